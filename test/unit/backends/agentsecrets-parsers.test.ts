import fc from 'fast-check'
import assert from 'node:assert/strict'

import {
  filterEvents,
  normaliseRecord,
  parseJsonLines,
  parseProxyLogsTable,
} from '../../../src/backends/agentsecrets/audit-log.js'
import {parseEnvelope, parseTextResult, textFailure} from '../../../src/backends/agentsecrets/call-output.js'
import {
  AgentSecretsProtocolError,
  classifyCliText,
  classifyResponse,
} from '../../../src/backends/agentsecrets/errors.js'
import {environmentColumn, parseKeyListing} from '../../../src/backends/agentsecrets/manage.js'
import {
  appliedTarget,
  callArgv,
  canonicalHeaderName,
  checkCall,
  proxyHeaders,
} from '../../../src/backends/agentsecrets/request.js'
import {cleanLines, parseTable} from '../../../src/backends/agentsecrets/text.js'
import {AgentVaultError} from '../../../src/core/errors.js'

const BANNER =
  'Update Available: 3.3.0 → 3.4.0\n  Run: agentsecrets update\n  Release notes: https://example\n────────────────\n'
const LIST = `Environment: development

╭──────────┬─────┬─────────┬──────╮
│ Key      │ DEV │ STAGING │ PROD │
├──────────┼─────┼─────────┼──────┤
│ API_KEY  │ *   │ -       │ *    │
│ PROD_ONE │ -   │ -       │ *    │
│ STRIPE   │ *   │ *       │ -    │
╰──────────┴─────┴─────────┴──────╯
Showing cached keys. Use --remote for latest from cloud.
`
const CONTEXT = {profile: 'agentsecrets'}

/** Hostile text: control characters, ANSI, box drawing, separators and JSON-ish fragments. */
const hostile = fc.oneof(
  fc.string({maxLength: 400, unit: 'binary'}),
  fc
    .array(
      fc.constantFrom(
        '│',
        '|',
        '╭',
        '─',
        '\r',
        '\n',
        '\u001B[31m',
        '\u001B]0;x\u0007',
        '{',
        '}',
        '"',
        'Key',
        '*',
        '-',
        'HTTP 200',
        'x ',
        'Environment: ',
        '\\',
        ':',
        ' ',
      ),
      {maxLength: 80},
    )
    .map((parts) => parts.join('')),
)

/** Run `parse` on hostile input: it may return or throw, but only typed errors. */
function onlyTypedErrors(parse: (text: string) => unknown): void {
  fc.assert(
    fc.property(hostile, (text) => {
      try {
        parse(text)
      } catch (error) {
        assert.ok(error instanceof AgentVaultError, `untyped error: ${String(error)}`)
      }
    }),
    {numRuns: 400},
  )
}

describe('agentsecrets parsers', () => {
  describe('tables (§4.5)', () => {
    it('strips ANSI and spinner redraws, reads rows by header name', () => {
      const coloured = `\u001B[1m${LIST.replace('API_KEY ', '\u001B[32mAPI_KEY\u001B[0m ')}`
      const table = parseTable(`⠋ loading\r${BANNER}${coloured}`, ['Key'], 'secrets list')
      assert.deepEqual(table.headers, ['Key', 'DEV', 'STAGING', 'PROD'])
      assert.deepEqual(
        table.rows.map((row) => [row.key, row.dev]),
        [
          ['API_KEY', '*'],
          ['PROD_ONE', '-'],
          ['STRIPE', '*'],
        ],
      )
      assert.deepEqual(cleanLines('a\rb\r\ncd  '), ['b', 'cd'])
    })

    it('keys of the active environment: the column that holds *', () => {
      assert.deepEqual(parseKeyListing(BANNER + LIST, 'x'), {
        environment: 'development',
        keys: ['API_KEY', 'STRIPE'],
      })
      assert.deepEqual(
        parseKeyListing(LIST.replace('Environment: development', 'Environment: production'), 'x').keys,
        ['API_KEY', 'PROD_ONE'],
      )
      assert.equal(environmentColumn('staging'), 'STAGING')
      assert.equal(environmentColumn('qa'), 'QA')
      // 1.1.0: one Key column, every key present.
      assert.deepEqual(
        parseKeyListing('Project Secrets\n+-----+\n| Key |\n+-----+\n| A_1 |\n+-----+\n', 'development').keys,
        ['A_1'],
      )
    })

    it('empty states give no rows; anything else is a typed protocol error quoting at most 200 characters', () => {
      assert.deepEqual(
        parseKeyListing('! No secrets found locally in any environment.\n', 'development').keys,
        [],
      )
      try {
        parseTable(`garbage ${'y'.repeat(500)}`, ['Key'], 'secrets list')
        assert.fail('no error')
      } catch (error) {
        assert.ok(error instanceof AgentSecretsProtocolError)
        assert.equal(error.exitCode, 5)
        assert.ok(error.message.length < 320, error.message)
      }
    })

    it('hostile output: only typed errors', () => {
      onlyTypedErrors((text) => parseKeyListing(text, 'development'))
      onlyTypedErrors((text) => parseTable(text, ['Time', 'Status'], 'proxy logs'))
    })

    it('a generated table round-trips', () => {
      const key = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,15}$/)
      fc.assert(
        fc.property(
          fc.uniqueArray(fc.tuple(key, fc.boolean()), {
            maxLength: 12,
            minLength: 1,
            selector: ([name]) => name,
          }),
          (rows) => {
            const width = Math.max(3, ...rows.map(([name]) => name.length))
            const line = (a: string, b: string) => `│ ${a.padEnd(width)} │ ${b.padEnd(3)} │`
            const text = [
              'Environment: development',
              `╭${'─'.repeat(width + 2)}┬─────╮`,
              line('Key', 'DEV'),
              ...rows.map(([name, on]) => line(name, on ? '*' : '-')),
              '╰──╯',
            ].join('\n')
            const expected = rows
              .filter(([, on]) => on)
              .map(([name]) => name)
              .sort()
            assert.deepEqual(parseKeyListing(text, 'development').keys, expected)
          },
        ),
      )
    })
  })

  describe('call output (§4.2)', () => {
    it('takes the last JSON line with a numeric status, after banners and junk', () => {
      const line = JSON.stringify({
        body: '{"ok":true}',
        duration_ms: 14,
        headers: {'Content-Type': ['application/json']},
        redacted: false,
        status: 200,
      })
      const envelope = parseEnvelope(`${BANNER}{"not": "it"}\n${line}\n⠋\n`)
      assert.equal(envelope.status, 200)
      assert.deepEqual(envelope.headers['Content-Type'], ['application/json'])
      assert.equal(
        parseEnvelope('{"status":0,"error":"failed to connect to proxy: refused"}').error,
        'failed to connect to proxy: refused',
      )
      assert.throws(() => parseEnvelope(BANNER), AgentSecretsProtocolError)
    })

    it('text mode: from the last HTTP <n> line, the body after the blank line minus the final newline', () => {
      assert.deepEqual(parseTextResult(`${BANNER}HTTP 201\n\n{"id":1}\nline 2\n`), {
        body: '{"id":1}\nline 2',
        status: 201,
      })
      assert.deepEqual(parseTextResult('HTTP 204\n\n\n'), {body: '', status: 204})
      assert.equal(parseTextResult('x API call failed: boom\n'), undefined)
      assert.equal(
        textFailure('', "Error: API call failed: secret 'K' not found in keychain\n"),
        "secret 'K' not found in keychain",
      )
      assert.equal(textFailure("x API call failed: secret 'K' not found\n", ''), "secret 'K' not found")
    })

    it('hostile output: only typed errors', () => {
      onlyTypedErrors((text) => parseEnvelope(text))
      onlyTypedErrors((text) => parseTextResult(text))
      onlyTypedErrors((text) => textFailure(text, text))
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          try {
            parseEnvelope(JSON.stringify(value))
          } catch (error) {
            assert.ok(error instanceof AgentSecretsProtocolError)
          }
        }),
      )
    })
  })

  describe('error classification (§6)', () => {
    const context = {keys: ['K'], method: 'GET', targetHost: 'api.example.com'}

    it('E1–E4 by body shape; everything else is the upstream’s response (E7)', () => {
      const e1 = classifyResponse(
        403,
        '{"domain":"api.example.com","error":"domain_not_in_allowlist","message":"…"}',
        context,
      )
      assert.equal(e1?.exitCode, 7)
      assert.match(e1?.suggestion ?? '', /agentsecrets workspace allowlist add api\.example\.com/)
      assert.equal(
        classifyResponse(403, '{"domain":"a.b","error":"empty_allowlist","message":"x"}', context)?.code,
        'AGENTSECRETS_DOMAIN_NOT_ALLOWED',
      )
      const e2 = classifyResponse(
        403,
        '{"domain":"a.b","error":"policy_approval_required","message":"x"}',
        context,
      )
      assert.equal(e2?.exitCode, 7)
      assert.match(e2?.suggestion ?? '', /agentsecrets proxy approve K GET a\.b/)
      assert.equal(
        classifyResponse(502, `{"error":"[SEC-404] secret 'OPENAI' not found in keychain"}\n`, context)
          ?.exitCode,
        6,
      )
      assert.equal(
        classifyResponse(401, '{"error":"Invalid or missing session token"}\n', context)?.exitCode,
        4,
      )
      assert.equal(
        classifyResponse(401, '{"error":"agent token validation failed: x"}\n', context)?.exitCode,
        4,
      )
      for (const [status, body] of [
        [403, '{"error":"forbidden_by_upstream"}'],
        [403, 'Forbidden'],
        [401, '{"error":"bad api key"}'],
        [502, '{"error":"failed to reach upstream: refused"}'],
        [500, '{"error":"secret \'K\' not found"}'],
        [404, '404 page not found\n'],
      ] as const)
        assert.equal(classifyResponse(status, body, context), undefined, `${status} ${body}`)
      assert.equal(
        classifyCliText("x API call failed: secret 'K2' not found …")?.message,
        'Secret not found: agentsecrets://K2',
      )
    })

    it('never quotes an unsafe domain or key from a body', () => {
      const error = classifyResponse(
        403,
        '{"domain":"evil\\r\\nX: y","error":"domain_not_in_allowlist"}',
        context,
      )
      assert.ok(error && !error.message.includes('evil'))
      assert.equal(
        classifyResponse(502, `{"error":"secret 'a b' not found"}`, context)?.message,
        'Secret not found: an agentsecrets:// key',
      )
    })

    it('hostile bodies: undefined or a typed error', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(401, 403, 502, 200, 500),
          fc.oneof(
            hostile,
            fc.jsonValue().map((value) => JSON.stringify(value)),
          ),
          (status, body) => {
            const result = classifyResponse(status, body, context)
            assert.ok(result === undefined || result instanceof AgentVaultError)
          },
        ),
      )
    })
  })

  describe('requests (§4.2, §5.2, §5.3)', () => {
    const url = new URL('http://127.0.0.1:9/echo?z=1')

    it('Go canonicalisation decides which target names survive the HTTP interface', () => {
      assert.equal(canonicalHeaderName('x-api-key'), 'X-Api-Key')
      assert.equal(appliedTarget('query', 'api_key'), 'Api_key')
      assert.equal(appliedTarget('body', 'auth.token'), 'Auth.Token')
      assert.equal(appliedTarget('form', 'Client_secret'), 'Client_secret')
      assert.throws(
        () =>
          checkCall(
            {headers: [], injections: [{key: 'K', style: 'query', target: 'key'}], method: 'GET', url},
            true,
          ),
        /as "Key"/,
      )
      checkCall(
        {headers: [], injections: [{key: 'K', style: 'query', target: 'key'}], method: 'GET', url},
        false,
      )
      checkCall(
        {headers: [], injections: [{key: 'K', style: 'header', target: 'x-api-key'}], method: 'GET', url},
        true,
      )
      assert.throws(
        () =>
          checkCall(
            {headers: [], injections: [{key: 'K', style: 'body', target: 'a-b'}], method: 'GET', url},
            false,
          ),
        /cannot contain "-"/,
      )
      fc.assert(
        fc.property(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,10}$/), (name) => {
          const survives = appliedTarget('query', name) === name
          assert.equal(survives, /^[A-Z][a-z0-9_]*$/.test(name))
        }),
      )
    })

    it('argv and proxy headers carry key names only', () => {
      const call = {
        body: Buffer.from('{"a":1}'),
        headers: [['Accept', 'application/json']] as Array<[string, string]>,
        injections: [
          {key: 'B', style: 'bearer' as const},
          {key: 'Q', style: 'query' as const, target: 'Key'},
          {key: 'J', style: 'body' as const, target: 'Auth.Token'},
        ],
        method: 'POST',
        url,
      }
      assert.deepEqual(callArgv(call, true), [
        'call',
        '--url',
        url.href,
        '--method',
        'POST',
        '--body',
        '{"a":1}',
        '--bearer',
        'B',
        '--query',
        'Key=Q',
        '--body-field',
        'Auth.Token=J',
        '--output',
        'json',
      ])
      const headers = proxyHeaders(call, {sessionToken: 'as_sess_' + '0'.repeat(32)})
      assert.deepEqual(
        headers.map(([name]) => name),
        [
          'Accept',
          'X-AS-Target-URL',
          'X-AS-Method',
          'Accept-Encoding',
          'X-AS-Inject-Bearer',
          'X-AS-Inject-Query-Key',
          'X-AS-Inject-Body-Auth-Token',
          'X-AS-Session-Token',
        ],
      )
      assert.throws(
        () => proxyHeaders({...call, headers: [['X-AS-Target-URL', 'http://evil']]}, {}),
        /not allowed/,
      )
    })
  })

  describe('audit normalisation (§9)', () => {
    it('maps the JSON fields and drops everything else', () => {
      const event = normaliseRecord(
        {
          agent_id: 'bot',
          auth_styles: ['bearer'],
          domain: 'api.example.com',
          duration_ms: 12,
          method: 'GET',
          reason: 'domain_not_in_allowlist',
          secret_keys: ['K', 'bad key'],
          status: 'BLOCKED',
          status_code: 403,
          target_url: 'https://u:p@api.example.com/x',
          timestamp: '2026-01-02T03:04:05Z',
          token: 'leak-me',
          value: 'leak-me-too',
          workspace_id: 'ws',
        },
        CONTEXT,
      )
      assert.deepEqual(event, {
        backend: 'agentsecrets',
        blocked: true,
        command: 'agentsecrets call',
        duration_ms: 12,
        exit_code: 7,
        method: 'GET',
        operation: 'http_request',
        outcome: 'denied',
        profile: 'agentsecrets',
        reason: 'domain_not_in_allowlist',
        references: ['agentsecrets://K'],
        source: 'agentsecrets',
        status: 403,
        target: 'https://api.example.com/x',
        target_host: 'api.example.com',
        time: '2026-01-02T03:04:05.000Z',
      })
      const env = normaliseRecord(
        {
          method: 'ENV',
          secret_keys: ['A'],
          status: 'OK',
          status_code: 3,
          target_url: 'sh -c x',
          timestamp: '2026-01-02T03:04:05Z',
        },
        CONTEXT,
      )
      assert.equal(env?.outcome, 'error')
      assert.equal(env?.exit_code, 3)
      assert.equal(env?.target, null)
      assert.equal(env?.status, undefined)
      assert.equal(
        normaliseRecord(
          {method: 'POST', reason: '-', status: 'OK', status_code: 500, timestamp: '2026-01-02T03:04:05Z'},
          CONTEXT,
        )?.outcome,
        'ok',
      )
    })

    it('the proxy logs table: local times dated today (or yesterday), truncated targets keep only the host', () => {
      const now = new Date(2026, 0, 2, 12, 0, 0)
      const table = [
        '╭──────────┬─────────────────────┬────────┬────────────────────────────────┬─────────┬────────┬──────┬────────────────────────┬──────────╮',
        '│ Time     │ Status              │ Method │ Target URL                     │ Secrets │ Auth   │ Code │ Reason                 │ Duration │',
        '├──────────┼─────────────────────┼────────┼────────────────────────────────┼─────────┼────────┼──────┼────────────────────────┼──────────┤',
        '│ 13:00:00 │ x BLOCK             │ GET    │ evil.example.com/x             │ K       │ bearer │ 403  │ domain_not_in_allowlist │ 0ms      │',
        '│ 11:00:00 │ * OK (REDACTED)     │ POST   │ api.example.com/v1/very/lon... │ K, L    │ bearer │ 200  │ credential_echo        │ 15ms     │',
        '╰──────────┴─────────────────────┴────────┴────────────────────────────────┴─────────┴────────┴──────┴────────────────────────┴──────────╯',
      ].join('\n')
      const events = parseProxyLogsTable(table, CONTEXT, now)
      assert.equal(events.length, 2)
      const [ok, blocked] = events
      assert.equal(ok?.time, new Date(2026, 0, 2, 11, 0, 0).toISOString())
      assert.equal(ok?.target, null)
      assert.equal(ok?.target_host, 'api.example.com')
      assert.equal(ok?.redacted, true)
      assert.deepEqual(ok?.references, ['agentsecrets://K', 'agentsecrets://L'])
      assert.equal(ok?.approximate, true)
      assert.equal(
        blocked?.time,
        new Date(2026, 0, 1, 13, 0, 0).toISOString(),
        'a future time of day is yesterday',
      )
      assert.equal(blocked?.blocked, true)
      assert.equal(blocked?.outcome, 'denied')
    })

    it('filters like the local trail', () => {
      const events = parseJsonLines(
        [
          '{"timestamp":"2026-01-01T00:00:00Z","method":"GET","status":"OK","secret_keys":["A"],"status_code":200}',
          'garbage',
          '{"timestamp":"2026-01-03T00:00:00Z","method":"GET","status":"BLOCKED","secret_keys":["B"],"status_code":403}',
          '{"timestamp":"2026-01-02T00:00:00Z","method":"GET","status":"OK","secret_keys":["B"],"status_code":200}',
        ].join('\n'),
        CONTEXT,
      )
      assert.deepEqual(
        filterEvents(events, {secret: 'B'}).map((event) => event.time.slice(0, 10)),
        ['2026-01-02', '2026-01-03'],
      )
      assert.equal(filterEvents(events, {status: 'denied'}).length, 1)
      assert.equal(filterEvents(events, {limit: 1})[0]?.time.slice(0, 10), '2026-01-03')
    })

    it('hostile lines: fewer events or typed errors, never a value field', () => {
      onlyTypedErrors((text) => parseJsonLines(text, CONTEXT))
      onlyTypedErrors((text) => parseProxyLogsTable(text, CONTEXT))
      const allowed = new Set([
        'approximate',
        'backend',
        'blocked',
        'command',
        'duration_ms',
        'exit_code',
        'method',
        'operation',
        'outcome',
        'profile',
        'reason',
        'redacted',
        'references',
        'source',
        'status',
        'target',
        'target_host',
        'time',
      ])
      fc.assert(
        fc.property(
          fc.dictionary(
            fc.constantFrom(
              'timestamp',
              'method',
              'status',
              'status_code',
              'secret_keys',
              'target_url',
              'domain',
              'reason',
              'value',
              'token',
              'duration_ms',
            ),
            fc.jsonValue(),
          ),
          (record) => {
            const event = normaliseRecord({timestamp: '2026-01-01T00:00:00Z', ...record}, CONTEXT)
            for (const key of Object.keys(event ?? {})) assert.ok(allowed.has(key), key)
          },
        ),
      )
    })
  })
})
