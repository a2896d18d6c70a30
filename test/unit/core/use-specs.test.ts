import fc from 'fast-check'
import assert from 'node:assert/strict'

import {UsageError} from '../../../src/core/errors.js'
import {planHttp, validateUseRequest} from '../../../src/core/use-engine.js'
import {
  parseAssignment,
  parseBodyPath,
  parseHeaderSpec,
  parseInjections,
  parseParams,
  parseParamsJson,
} from '../../../src/core/use/specs.js'

/** Run `fn`; it may return, or throw a UsageError whose message does not quote the input. */
function onlyUsageErrors(fn: () => unknown, input: string): void {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof UsageError, `${String(error)} for ${JSON.stringify(input)}`)
    assert.equal(error.exitCode, 2)
    if (input.length >= 12) assert.ok(!error.message.includes(input), 'the message quotes the input')
  }
}

const hostile = fc.oneof(
  fc.string({unit: 'binary'}),
  fc.string({
    unit: fc.constantFrom(
      ':',
      '=',
      '.',
      ' ',
      '\n',
      '\r',
      '\u0000',
      '_',
      'a',
      '{',
      '}',
      '"',
      '[',
      '_',
      'proto',
      '-',
    ),
  }),
  fc.json(),
)

describe('core/use specs', () => {
  it('parses header, assignment and body-path specs', () => {
    assert.deepEqual(parseHeaderSpec('X-Api-Key:  local://K ', '--secret-header'), {
      name: 'X-Api-Key',
      value: 'local://K',
    })
    assert.deepEqual(parseHeaderSpec('Accept: a:b', '-H'), {name: 'Accept', value: 'a:b'})
    assert.deepEqual(parseHeaderSpec('X-Empty:', '-H'), {name: 'X-Empty', value: ''})
    assert.deepEqual(parseAssignment('key=openbao://secret/app#k?version=2', '--query', 'x'), {
      name: 'key',
      value: 'openbao://secret/app#k?version=2',
    })
    assert.deepEqual(parseBodyPath('auth.token'), ['auth', 'token'])
    for (const bad of ['a..b', '.a', '__proto__', 'a.constructor', 'prototype.x'])
      assert.throws(() => parseBodyPath(bad), UsageError, bad)
    assert.throws(() => parseHeaderSpec('Bad Name: x', '-H'), UsageError)
    assert.throws(() => parseHeaderSpec('X-Api-Key:', '--secret-header'), UsageError)
    assert.throws(() => parseHeaderSpec('X: a\r\nInjected: 1', '-H'), UsageError)
    assert.throws(() => parseAssignment('=local://K', '--query', 'x'), UsageError)
  })

  it('collects every injection style in a stable order', () => {
    assert.deepEqual(
      parseInjections({
        'body-field': ['a.b=B'],
        'form-field': ['f=F'],
        basic: 'BASIC',
        bearer: 'BEARER',
        header: ['X-K: H'],
        query: ['q=Q'],
      }),
      [
        {reference: 'BEARER', style: 'bearer'},
        {reference: 'BASIC', style: 'basic'},
        {reference: 'H', style: 'header', target: 'X-K'},
        {reference: 'Q', style: 'query', target: 'q'},
        {reference: 'B', style: 'body', target: 'a.b'},
        {reference: 'F', style: 'form', target: 'f'},
      ],
    )
  })

  it('--params JSON first, then --param pairs (strings; headers.Name sets one header)', () => {
    assert.deepEqual(
      parseParams('{"url":"https://a","headers":{"A":"1"},"n":3}', [
        'method=POST',
        'headers.B=2',
        'url=https://b',
      ]),
      {
        headers: {A: '1', B: '2'},
        method: 'POST',
        n: 3,
        url: 'https://b',
      },
    )
    assert.deepEqual(parseParams(undefined, ['data=a=b']), {data: 'a=b'})
    assert.throws(() => parseParams(undefined, ['__proto__=x']), UsageError)
    assert.throws(() => parseParams(undefined, ['headers.__proto__=x']), UsageError)
    assert.throws(() => parseParamsJson('{"__proto__":{"polluted":1}}'), UsageError)
    assert.throws(() => parseParamsJson('[1]'), UsageError)
    assert.throws(() => parseParamsJson('{'), UsageError)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  it('hostile input to every parser yields a result or a UsageError, nothing else (fast-check)', () => {
    fc.assert(
      fc.property(hostile, hostile, (a, b) => {
        onlyUsageErrors(() => parseHeaderSpec(a, '--secret-header'), a)
        onlyUsageErrors(() => parseHeaderSpec(a, '-H'), a)
        onlyUsageErrors(() => parseAssignment(a, '--query', 'x'), a)
        onlyUsageErrors(() => parseBodyPath(a), a)
        onlyUsageErrors(() => parseParamsJson(a), a)
        onlyUsageErrors(() => parseParams(b.startsWith('{') ? b : undefined, [a, b]), a)
        onlyUsageErrors(
          () => parseInjections({'body-field': [a], 'form-field': [b], header: [a], query: [b]}),
          a,
        )
        assert.equal(({} as Record<string, unknown>).polluted, undefined)
      }),
      {numRuns: 3000},
    )
  })

  it('hostile operation parameters and HTTP plans yield only UsageErrors (fast-check)', () => {
    const value = fc.oneof(
      fc.string({unit: 'binary'}),
      fc.jsonValue(),
      fc.option(fc.constant(null), {nil: undefined}),
    )
    fc.assert(
      fc.property(
        fc.constantFrom(
          'http_request',
          'http_header',
          'sign',
          'verify',
          'encrypt',
          'decrypt',
          'HTTP_REQUEST',
          'bogus',
        ),
        fc.dictionary(
          fc.constantFrom(
            'url',
            'method',
            'headers',
            'body',
            'header_type',
            'header_name',
            'algorithm',
            'data',
            'encoding',
            'signature',
            'plaintext',
            'ciphertext',
          ),
          value,
        ),
        (operation, params) => {
          onlyUsageErrors(() => validateUseRequest({operation, params}, 'local://K'), '')
        },
      ),
      {numRuns: 3000},
    )
    fc.assert(
      fc.property(
        fc.string({unit: 'binary'}),
        fc.option(fc.string({unit: 'binary'})),
        fc.string({unit: 'binary'}),
        (url, method, path) => {
          onlyUsageErrors(
            () =>
              planHttp({
                body: Buffer.from('{"a":{"b":1}}'),
                ...(method !== null && {method}),
                injections: [{reference: 'local://K', style: 'body', target: path}],
                url: `https://example.com/${url}`,
              }),
            '',
          )
        },
      ),
      {numRuns: 2000},
    )
  })

  it('plans refuse what cannot be sent safely', () => {
    const inject = [{reference: 'local://K', style: 'bearer' as const}]
    const codeOf = (fn: () => unknown): string => {
      try {
        fn()
      } catch (error) {
        assert.ok(error instanceof UsageError)
        return error.code
      }

      return 'none'
    }

    assert.equal(
      codeOf(() => planHttp({injections: inject, url: 'ftp://a.example/'})),
      'BAD_URL',
    )
    assert.equal(
      codeOf(() => planHttp({injections: inject, url: 'https://u:p@a.example/'})),
      'CREDENTIALS_IN_URL',
    )
    assert.equal(
      codeOf(() => planHttp({injections: [], url: 'https://a.example/'})),
      'NO_CREDENTIAL',
    )
    assert.equal(
      codeOf(() =>
        planHttp({
          injections: [...inject, {reference: 'local://B', style: 'basic'}],
          url: 'https://a.example/',
        }),
      ),
      'DUPLICATE_CREDENTIAL_HEADER',
    )
    assert.equal(
      codeOf(() =>
        planHttp({
          injections: [
            {reference: 'local://K', style: 'body', target: 'a'},
            {reference: 'local://K', style: 'form', target: 'b'},
          ],
          url: 'https://a.example/',
        }),
      ),
      'BODY_STYLE_CONFLICT',
    )
    assert.equal(
      codeOf(() =>
        planHttp({
          body: Buffer.from('[1]'),
          injections: [{reference: 'local://K', style: 'body', target: 'a'}],
          url: 'https://a.example/',
        }),
      ),
      'BODY_NOT_JSON_OBJECT',
    )
    assert.equal(
      codeOf(() =>
        planHttp({
          body: Buffer.from('{"a":1}'),
          injections: [{reference: 'local://K', style: 'body', target: 'a.b'}],
          url: 'https://a.example/',
        }),
      ),
      'BODY_FIELD_CONFLICT',
    )
    assert.equal(
      codeOf(() => planHttp({injections: inject, method: 'GE T', url: 'https://a.example/'})),
      'BAD_METHOD',
    )
    assert.equal(
      planHttp({body: Buffer.from('x'), injections: inject, url: 'https://a.example/'}).method,
      'POST',
    )
    assert.equal(planHttp({injections: inject, method: 'patch', url: 'https://a.example/'}).method, 'PATCH')
  })
})
