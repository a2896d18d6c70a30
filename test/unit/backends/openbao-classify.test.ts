/**
 * The openbao response classifiers (protocols/openbao.md §6, §12): by status and body shape,
 * never message text; and, property-tested with hostile bodies, they return a value or throw a
 * typed error — nothing else — and never repeat what a body said in a message.
 */
import fc from 'fast-check'
import assert from 'node:assert/strict'

import {
  type Answer,
  classifyFailure,
  classifyRead,
  fieldValue,
  networkFailure,
  type OperationContext,
  type Purpose,
  responseOf,
} from '../../../src/backends/openbao/errors.js'

const MARK = 'hostile-body-text-5f0e'
const READ: OperationContext = {purpose: 'read', reference: 'openbao+kv2://secret/app#k'}
const PURPOSES: Purpose[] = [
  'delete',
  'health',
  'list',
  'login',
  'lookup-self',
  'metadata-read',
  'metadata-write',
  'read',
  'renew-self',
  'revoke-self',
  'unwrap',
  'wrap-lookup',
  'write',
]
const EXIT_BY_CATEGORY: Record<string, number> = {
  auth: 4,
  config: 3,
  denied: 7,
  internal: 1,
  not_found: 6,
  rate_limited: 8,
  unavailable: 5,
  usage: 2,
}

interface Typed {
  category: string
  code: string
  exitCode: number
  message: string
  suggestion?: string
}

/** A typed agentvault error, recognised by shape (module instances may differ under mocha). */
function assertTyped(error: unknown): Typed {
  const typed = error as Typed
  assert.ok(error instanceof Error, `not an Error: ${String(error)}`)
  assert.equal(typeof typed.code, 'string')
  assert.match(typed.code, /^[A-Z][A-Z0-9_]+$/)
  assert.equal(typed.exitCode, EXIT_BY_CATEGORY[typed.category], `${typed.code} ${typed.category}`)
  assert.ok(!typed.message.includes(MARK), `message repeats the body: ${typed.message}`)
  assert.ok(!(typed.suggestion ?? '').includes(MARK))
  return typed
}

function readFails(answer: Answer): Typed {
  try {
    classifyRead(READ, answer)
  } catch (error) {
    return assertTyped(error)
  }

  assert.fail('expected classifyRead to throw')
}

const envelope = (data: unknown, extra: Record<string, unknown> = {}) => ({
  request_id: '9a1c',
  lease_id: '',
  renewable: false,
  lease_duration: 0,
  data,
  wrap_info: null,
  warnings: null,
  auth: null,
  ...extra,
})
const metadata = (fields: Record<string, unknown> = {}) => ({
  created_time: '2026-01-02T03:04:05.123456789Z',
  custom_metadata: null,
  deletion_time: '',
  destroyed: false,
  version: 3,
  ...fields,
})

const code = (context: OperationContext, status: number, body?: unknown) =>
  assertTyped(classifyFailure(context, status, body ?? {errors: [MARK]})).code

describe('openbao classification', () => {
  describe('reads (§6)', () => {
    it('200 with a data map is the value, a scheduled deletion_time included', () => {
      const secret = classifyRead(READ, {
        body: envelope({data: {k: 'v'}, metadata: metadata({deletion_time: '2099-01-01T00:00:00Z'})}),
        ok: true,
      })
      assert.deepEqual(secret.data, {k: 'v'})
      assert.equal(secret.metadata.version, 3)
    })

    it('404 with destroyed metadata → SECRET_VERSION_DESTROYED, checked before deletion_time', () => {
      const error = readFails({
        body: envelope({
          data: null,
          metadata: metadata({deletion_time: '2026-01-03T00:00:00.5Z', destroyed: true}),
        }),
        ok: false,
        status: 404,
      })
      assert.equal(error.code, 'SECRET_VERSION_DESTROYED')
      assert.equal(error.exitCode, 6)
    })

    it('404 with a deletion_time → SECRET_VERSION_DELETED carrying the version', () => {
      const error = readFails({
        body: envelope({data: null, metadata: metadata({deletion_time: '2026-01-03T00:00:00.5Z'})}),
        ok: false,
        status: 404,
      }) as Typed & {details?: {version?: number}}
      assert.equal(error.code, 'SECRET_VERSION_DELETED')
      assert.equal(error.details?.version, 3)
    })

    it('404 envelope with warnings and no errors → NOT_KV_V2 (exit 3); {"errors":[]} → SECRET_NOT_FOUND', () => {
      assert.equal(
        readFails({body: envelope(null, {warnings: ['Invalid path']}), ok: false, status: 404}).code,
        'NOT_KV_V2',
      )
      assert.equal(readFails({body: {errors: []}, ok: false, status: 404}).code, 'SECRET_NOT_FOUND')
      assert.equal(
        readFails({body: {errors: ['no handler']}, ok: false, status: 404}).code,
        'SECRET_NOT_FOUND',
      )
      assert.equal(readFails({body: '', ok: false, status: 404}).code, 'SECRET_NOT_FOUND')
    })

    it('the same message text never changes the class (only shape does)', () => {
      for (const message of [
        'permission denied',
        'Vault is sealed',
        'check-and-set parameter did not match the current version',
      ])
        assert.equal(readFails({body: {errors: [message]}, ok: false, status: 404}).code, 'SECRET_NOT_FOUND')
      assert.equal(
        readFails({body: {errors: ['not found']}, ok: false, status: 403}).code,
        'PERMISSION_DENIED',
      )
    })

    it('200 that is not an envelope, or lacks the data map → BACKEND_ERROR', () => {
      for (const body of [
        '<html>',
        null,
        {},
        envelope(null),
        envelope({data: 'x', metadata: metadata()}),
        [1],
      ])
        assert.equal(readFails({body, ok: true}).code, 'BACKEND_ERROR')
    })

    it('#field: a missing key is FIELD_NOT_FOUND; non-strings print as compact JSON', () => {
      const secret = classifyRead(READ, {
        body: envelope({data: {n: 5, o: {a: [1]}, s: 'x'}, metadata: metadata()}),
        ok: true,
      })
      assert.equal(fieldValue(secret, 's', READ).toString(), 'x')
      assert.equal(fieldValue(secret, 'n', READ).toString(), '5')
      assert.equal(fieldValue(secret, 'o', READ).toString(), '{"a":[1]}')
      assert.throws(
        () => fieldValue(secret, 'missing', READ),
        (error: unknown) => assertTyped(error).code === 'FIELD_NOT_FOUND',
      )
      assert.throws(
        () => fieldValue(secret, 'toString', READ),
        (error: unknown) => assertTyped(error).code === 'FIELD_NOT_FOUND',
      )
    })
  })

  describe('other operations (§12)', () => {
    it('400 by operation: login → AUTH_FAILED, unwrap → WRAP_TOKEN_INVALID, a cas write the server calls a mismatch → CAS_MISMATCH, else BACKEND_REJECTED', () => {
      assert.equal(code({purpose: 'login'}, 400), 'AUTH_FAILED')
      assert.equal(code({purpose: 'unwrap'}, 400), 'WRAP_TOKEN_INVALID')
      assert.equal(code({purpose: 'wrap-lookup'}, 400), 'WRAP_TOKEN_INVALID')
      const mismatch = {errors: ['check-and-set parameter did not match the current version']}
      assert.equal(classifyFailure({cas: true, purpose: 'write'}, 400, mismatch).code, 'CAS_MISMATCH')
      // Any other 400 on a write that carried cas (a bad body, a proxy's refusal) is not a mismatch.
      assert.equal(code({cas: true, purpose: 'write'}, 400), 'BACKEND_REJECTED')
      assert.equal(
        classifyFailure({cas: true, purpose: 'write'}, 400, {errors: ['no data provided']}).code,
        'BACKEND_REJECTED',
      )
      assert.equal(code({purpose: 'write'}, 400), 'BACKEND_REJECTED')
      assert.match(String(classifyFailure({purpose: 'write'}, 400, {}).suggestion), /--cas/)
    })

    it('403: login → AUTH_FAILED, token endpoints → AUTH_REQUIRED, else PERMISSION_DENIED (to be settled by lookup-self)', () => {
      assert.equal(code({purpose: 'login'}, 403), 'AUTH_FAILED')
      assert.equal(code({purpose: 'lookup-self'}, 403), 'AUTH_REQUIRED')
      assert.equal(code({purpose: 'write'}, 403), 'PERMISSION_DENIED')
    })

    it('429 → RATE_LIMITED (8), 503 → BACKEND_UNAVAILABLE (5), 405/500/502 → BACKEND_ERROR (5)', () => {
      assert.equal(code({purpose: 'read'}, 429), 'RATE_LIMITED')
      assert.equal(code({purpose: 'read'}, 503), 'BACKEND_UNAVAILABLE')
      for (const status of [405, 500, 502, 418])
        assert.equal(code({purpose: 'list'}, status), 'BACKEND_ERROR')
    })

    it('server messages are kept only as details.serverErrors, truncated', () => {
      const error = classifyFailure({purpose: 'write'}, 400, {
        errors: ['x'.repeat(500), 7, 'second'],
      }) as unknown as {
        details: {serverErrors: string[]}
        message: string
      }
      assert.equal(error.details.serverErrors.length, 2)
      assert.ok((error.details.serverErrors[0] ?? '').length <= 201)
      assert.ok(!error.message.includes('xxx'))
    })
  })

  describe('transport failures', () => {
    it('finds TLS, pre-send and in-flight codes on the error or its causes', () => {
      const wrapped = (code: string) =>
        Object.assign(new Error('axios'), {cause: Object.assign(new Error('x'), {code})})
      assert.deepEqual(networkFailure(wrapped('DEPTH_ZERO_SELF_SIGNED_CERT')), {
        code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
        kind: 'tls',
      })
      assert.equal(
        networkFailure(Object.assign(new Error('x'), {code: 'ERR_TLS_CERT_ALTNAME_INVALID'})).kind,
        'tls',
      )
      assert.equal(networkFailure(Object.assign(new Error('x'), {code: 'ECONNREFUSED'})).kind, 'pre-send')
      assert.equal(
        networkFailure(
          Object.assign(new Error('x'), {
            code: 'ERR_FR_REDIRECTION_FAILURE',
            cause: {code: 'AGENTVAULT_REDIRECT_REFUSED'},
          }),
        ).kind,
        'pre-send',
      )
      assert.equal(networkFailure(Object.assign(new Error('x'), {code: 'ECONNABORTED'})).kind, 'in-flight')
      assert.equal(networkFailure(Object.assign(new Error('x'), {code: 'ECONNRESET'})).kind, 'in-flight')
      assert.equal(networkFailure('weird').kind, 'other')
    })
  })

  describe('properties (fast-check): hostile bodies give only typed errors', () => {
    const hostileString = fc.oneof(
      fc.constant(MARK),
      fc.string(),
      fc.string().map((s) => `${s}${MARK}`),
    )
    const hostileValue = fc.oneof(
      fc.anything({
        key: fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'toString', 'errors', 'data')),
      }),
      fc.jsonValue(),
      hostileString,
    )
    const hostileMetadata = fc.record(
      {
        created_time: hostileValue,
        custom_metadata: hostileValue,
        deletion_time: fc.oneof(hostileString, hostileValue),
        destroyed: fc.oneof(fc.boolean(), hostileValue),
        version: fc.oneof(fc.integer(), fc.double(), hostileValue),
      },
      {requiredKeys: []},
    )
    const hostileBody = fc.oneof(
      hostileValue,
      fc.record(
        {
          auth: hostileValue,
          data: fc.oneof(
            hostileValue,
            fc.record(
              {data: hostileValue, metadata: fc.oneof(hostileValue, hostileMetadata)},
              {requiredKeys: []},
            ),
          ),
          errors: fc.oneof(hostileValue, fc.array(hostileString)),
          request_id: hostileValue,
          warnings: fc.oneof(hostileValue, fc.array(hostileString)),
          wrap_info: hostileValue,
        },
        {requiredKeys: []},
      ),
    )
    const status = fc.oneof(
      fc.constantFrom(200, 204, 307, 400, 403, 404, 405, 429, 500, 502, 503),
      fc.integer({max: 599, min: 100}),
    )

    it('classifyRead: a value with a data map, or a typed error', () => {
      fc.assert(
        fc.property(fc.boolean(), status, hostileBody, (ok, code, body) => {
          const answer: Answer = ok ? {body, ok: true} : {body, ok: false, status: code}
          try {
            const secret = classifyRead(READ, answer)
            assert.ok(ok)
            assert.equal(typeof secret.data, 'object')
            assert.equal(typeof secret.metadata.version, 'number')
          } catch (error) {
            assertTyped(error)
          }
        }),
        {numRuns: 3000},
      )
    })

    it('classifyFailure: always a typed error, for every operation and status', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...PURPOSES),
          fc.boolean(),
          status,
          hostileBody,
          (purpose, cas, code, body) => {
            assertTyped(classifyFailure({cas, purpose, reference: 'openbao+kv2://secret/x'}, code, body))
          },
        ),
        {numRuns: 3000},
      )
    })

    it('fieldValue over JSON data: a Buffer or FIELD_NOT_FOUND', () => {
      fc.assert(
        fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.string(), (data, field) => {
          const secret = classifyRead(READ, {body: envelope({data, metadata: metadata()}), ok: true})
          try {
            assert.ok(Buffer.isBuffer(fieldValue(secret, field, READ)))
          } catch (error) {
            assert.equal(assertTyped(error).code, 'FIELD_NOT_FOUND')
          }
        }),
      )
    })

    it('responseOf and networkFailure never throw', () => {
      fc.assert(
        fc.property(hostileValue, hostileValue, (response, cause) => {
          const error = Object.assign(new Error('x'), {cause, response})
          responseOf(error)
          responseOf(response)
          networkFailure(error)
          networkFailure(response)
        }),
      )
    })
  })
})
