// The project imports fast-check's default export (`fc.string()`, …) as its docs do.

import fc from 'fast-check'
import assert from 'node:assert/strict'

import {AgentVaultError, DeniedError, UsageError} from '../../../src/core/errors.js'
import {
  checkMountAllowed,
  formatReference,
  looksLikeCredential,
  looksLikeReference,
  parseFolderReference,
  parseReference,
  resourceRef,
  type SecretReference,
} from '../../../src/core/references.js'

const URI_CODES = new Set([
  'URI_QUERY',
  'URI_SEGMENT',
  'URI_SYNTAX',
  'URI_TRAVERSAL',
  'URI_VERSION',
  'URI_WILDCARD',
])

function parseError(input: string): UsageError {
  try {
    parseReference(input)
  } catch (error) {
    assert.ok(
      error instanceof UsageError,
      `expected a UsageError for ${JSON.stringify(input)}, got ${String(error)}`,
    )
    return error
  }

  assert.fail(`expected ${JSON.stringify(input)} to be rejected`)
}

function assertUriError(error: unknown, input: string): void {
  assert.ok(error instanceof UsageError, `non-UsageError for ${JSON.stringify(input)}: ${String(error)}`)
  assert.ok(URI_CODES.has(error.code), `unexpected code ${error.code} for ${JSON.stringify(input)}`)
  assert.equal(error.exitCode, 2)
  assert.ok(error.suggestion, 'every URI error carries a suggestion')
}

describe('core/references', () => {
  describe('openbao.md §1 table', () => {
    const accepted: Array<[row: number, input: string, canonical: string]> = [
      [1, 'openbao+kv2://secret/myapp/api#token?version=3', 'openbao+kv2://secret/myapp/api#token?version=3'],
      [2, 'openbao+kv2://secret/myapp/api?version=3#token', 'openbao+kv2://secret/myapp/api#token?version=3'],
      [3, 'openbao://secret/myapp/api#token?version=3', 'openbao+kv2://secret/myapp/api#token?version=3'],
      [4, 'OpenBao+KV2://secret/MyApp/API_key#Token', 'openbao+kv2://secret/MyApp/API_key#Token'],
      [5, 'vault://kv/team-a/db.prod#password', 'vault+kv2://kv/team-a/db.prod#password'],
      [6, 'hashicorp+kv2://secret/app', 'hashicorp+kv2://secret/app'],
      [
        7,
        'openbao://secret/app?version=12&profile=prod-bao',
        'openbao+kv2://secret/app?profile=prod-bao&version=12',
      ],
      [8, 'openbao://secret/myapp/api/', 'openbao+kv2://secret/myapp/api'],
      [9, 'openbao://other/app', 'openbao+kv2://other/app'],
    ]
    for (const [row, input, canonical] of accepted) {
      it(`row ${row}: ${input} → ${canonical}`, () => {
        const ref = parseReference(input)
        assert.equal(ref.canonical, canonical)
        assert.equal(ref.kind, 'openbao')
        assert.equal(formatReference(ref), canonical)
        assert.deepEqual(parseReference(canonical), ref)
      })
    }

    it('row 1 fills every part', () => {
      assert.deepEqual(parseReference('openbao+kv2://secret/myapp/api#token?version=3'), {
        canonical: 'openbao+kv2://secret/myapp/api#token?version=3',
        field: 'token',
        kind: 'openbao',
        mount: 'secret',
        path: 'secret/myapp/api',
        scheme: 'openbao+kv2',
        secretPath: 'myapp/api',
        version: 3,
      })
    })

    it('row 7 keeps ?profile= as written', () => {
      const ref = parseReference('openbao://secret/app?version=12&profile=prod-bao')
      assert.equal(ref.profile, 'prod-bao')
      assert.equal(ref.version, 12)
      assert.equal(ref.field, undefined)
    })

    it('row 9: an unset allowedMounts allows any mount', () => {
      assert.doesNotThrow(() => checkMountAllowed(parseReference('openbao://other/app')))
    })

    const rejected: Array<[row: number, input: string, code: string]> = [
      [10, 'secret/myapp/api#token', 'URI_SYNTAX'],
      [11, 'openbao+kv1://secret/app', 'URI_SYNTAX'],
      [11, 'azure://secret/app', 'URI_SYNTAX'],
      [11, 'openbao+://secret/app', 'URI_SYNTAX'],
      [12, 'openbao://secret', 'URI_SYNTAX'],
      [13, 'openbao://secret/app#a#b', 'URI_SYNTAX'],
      [13, 'openbao://secret/app?version=1?x=2', 'URI_SYNTAX'],
      [13, 'openbao://secret/app#', 'URI_SYNTAX'],
      [14, 'openbao://secret/jira/*', 'URI_WILDCARD'],
      [14, 'openbao://secret/app#*', 'URI_WILDCARD'],
      [15, 'openbao://secret/a%2Fb#k', 'URI_TRAVERSAL'],
      [15, 'openbao://secret/a%252Fb', 'URI_TRAVERSAL'],
      [16, 'openbao://secret/../admin/creds', 'URI_TRAVERSAL'],
      [16, 'openbao://secret/a..b', 'URI_TRAVERSAL'],
      [16, 'openbao://secret/./app', 'URI_TRAVERSAL'],
      [17, 'openbao://secret//app', 'URI_SEGMENT'],
      [17, 'openbao://secret/app//', 'URI_SEGMENT'],
      [18, 'openbao://secret/my app', 'URI_SEGMENT'],
      [18, 'openbao://secret/a%20b', 'URI_SEGMENT'],
      [19, 'openbao://secret/app#api key', 'URI_SEGMENT'],
      [20, 'openbao://secret/app?version=3&version=4', 'URI_QUERY'],
      [21, 'openbao://secret/app?mount=other', 'URI_QUERY'],
      [21, 'openbao://secret/app?version', 'URI_QUERY'],
      [21, 'openbao://secret/app?', 'URI_QUERY'],
      [22, 'openbao://secret/app?version=0', 'URI_VERSION'],
      [22, 'openbao://secret/app?version=-1', 'URI_VERSION'],
      [22, 'openbao://secret/app?version=03', 'URI_VERSION'],
      [22, 'openbao://secret/app?version=abc', 'URI_VERSION'],
    ]
    for (const [row, input, code] of rejected) {
      it(`row ${row}: ${input} → ${code}`, () => {
        const error = parseError(input)
        assert.equal(error.code, code)
        assertUriError(error, input)
      })
    }

    it('row 23: a mount outside allowedMounts is denied (exit 7)', () => {
      const ref = parseReference('openbao://other/app')
      assert.throws(
        () => checkMountAllowed(ref, ['secret']),
        (error: unknown) =>
          error instanceof DeniedError && error.code === 'MOUNT_NOT_ALLOWED' && error.exitCode === 7,
      )
      assert.doesNotThrow(() => checkMountAllowed(parseReference('openbao://secret/app'), ['secret']))
    })

    it('row 24: allowedMounts [] allows none', () => {
      assert.throws(
        () => checkMountAllowed(parseReference('openbao://secret/app'), []),
        (error: unknown) => error instanceof DeniedError && error.code === 'MOUNT_NOT_ALLOWED',
      )
    })
  })

  describe('openbao step order and edges', () => {
    const cases: Array<[input: string, code: string]> = [
      [' openbao://secret/app', 'URI_SYNTAX'], // no trimming
      ['openbao://', 'URI_SYNTAX'], // empty path
      ['openbao://#f', 'URI_SYNTAX'],
      ['openbao://secret/app#a*#b', 'URI_SYNTAX'], // step 2 before step 3
      ['openbao://secret/../*', 'URI_WILDCARD'], // step 3 before step 4
      ['openbao://secret/a b/..', 'URI_TRAVERSAL'], // step 4 before step 5
      ['openbao://secret/app/.', 'URI_TRAVERSAL'],
      ['openbao://secret/a%2fb', 'URI_TRAVERSAL'],
      ['openbao://secret/a%25252Fb', 'URI_TRAVERSAL'],
      ['openbao://secret/a b?version=x', 'URI_SEGMENT'], // step 5 before step 7
      ['openbao://secret#a b', 'URI_SEGMENT'], // step 5 before step 6
      ['openbao://secret/', 'URI_SYNTAX'], // trailing slash dropped, then mount only
      ['openbao://secret/app?version=abc&mount=x', 'URI_QUERY'], // step 7 before step 8
      ['openbao://secret/app?profile=a b', 'URI_QUERY'],
      ['openbao://secret/app?profile=', 'URI_QUERY'],
      ['openbao://secret/app?version=1&', 'URI_QUERY'],
      ['openbao://secret/app?Version=1', 'URI_QUERY'],
      ['openbao://secret/app?version=9007199254740992', 'URI_VERSION'],
      ['openbao://secret/app?version=1e3', 'URI_VERSION'],
      ['openbao://secrét/app', 'URI_SEGMENT'],
      ['OPENBAO+\u212AV2://secret/app', 'URI_SYNTAX'], // Kelvin sign is not a K
    ]
    for (const [input, code] of cases) {
      it(`${JSON.stringify(input)} → ${code}`, () => assert.equal(parseError(input).code, code))
    }

    it('accepts the largest safe version', () => {
      assert.equal(
        parseReference('openbao://secret/app?version=9007199254740991').version,
        Number.MAX_SAFE_INTEGER,
      )
    })

    it('accepts a field of dots and a mount-only guard by exact case', () => {
      assert.equal(parseReference('openbao://secret/app#..').field, '..')
      assert.throws(() => checkMountAllowed(parseReference('openbao://Secret/app'), ['secret']), DeniedError)
    })
  })

  describe('other kinds', () => {
    const accepted: Array<[input: string, canonical: string, expected: Partial<SecretReference>]> = [
      ['local://OPENAI_KEY', 'local://OPENAI_KEY', {kind: 'local', path: 'OPENAI_KEY', scheme: 'local'}],
      ['LOCAL://team/openai.key-2', 'local://team/openai.key-2', {kind: 'local', path: 'team/openai.key-2'}],
      ['local://db/password/', 'local://db/password', {kind: 'local', path: 'db/password'}],
      ['local://KEY?profile=work', 'local://KEY?profile=work', {kind: 'local', profile: 'work'}],
      [
        'local://KEY?version=2&profile=w',
        'local://KEY?profile=w&version=2',
        {kind: 'local', profile: 'w', version: 2},
      ],
      ['sanctum://openai/api_key', 'sanctum://openai/api_key', {kind: 'sanctum', path: 'openai/api_key'}],
      ['Sanctum://a/b?profile=lab', 'sanctum://a/b?profile=lab', {kind: 'sanctum', profile: 'lab'}],
      ['agentsecrets://OPENAI_API_KEY', 'agentsecrets://OPENAI_API_KEY', {kind: 'agentsecrets'}],
      ['agentsecrets://_k1?profile=p', 'agentsecrets://_k1?profile=p', {kind: 'agentsecrets', path: '_k1'}],
      ['agentauth://access-token', 'agentauth://access-token', {kind: 'agentauth', path: 'access-token'}],
      ['AgentAuth://access-token?profile=ci', 'agentauth://access-token?profile=ci', {kind: 'agentauth'}],
    ]
    for (const [input, canonical, expected] of accepted) {
      it(`${input} → ${canonical}`, () => {
        const ref = parseReference(input)
        assert.equal(ref.canonical, canonical)
        for (const [key, value] of Object.entries(expected)) {
          assert.equal(ref[key as keyof SecretReference], value, key)
        }

        assert.equal(ref.mount, undefined)
        assert.equal(ref.field, undefined)
        if (!('version' in expected)) assert.equal(ref.version, undefined)
        assert.deepEqual(parseReference(formatReference(ref)), ref)
      })
    }

    const rejected: Array<[input: string, code: string]> = [
      ['local://KEY#field', 'URI_SYNTAX'],
      ['local://', 'URI_SYNTAX'],
      ['local://KEY?version=0', 'URI_VERSION'],
      ['local://KEY?version=2&version=3', 'URI_QUERY'],
      ['local://KEY?profile=a/b', 'URI_QUERY'],
      ['local://KEY?profile=x&profile=y', 'URI_QUERY'],
      ['local://KEY?', 'URI_QUERY'],
      ['local://a*', 'URI_WILDCARD'],
      ['local://../KEY', 'URI_TRAVERSAL'],
      ['local://a%2Fb', 'URI_TRAVERSAL'],
      ['local://my key', 'URI_SEGMENT'],
      ['local://a//b', 'URI_SEGMENT'],
      ['sanctum://openai/./key', 'URI_TRAVERSAL'],
      ['sanctum://openai/api key', 'URI_SEGMENT'],
      ['sanctum://x?version=1', 'URI_QUERY'],
      ['agentsecrets://a/b', 'URI_SEGMENT'],
      ['agentsecrets://1KEY', 'URI_SEGMENT'],
      ['agentsecrets://my-key', 'URI_SEGMENT'],
      ['agentsecrets://KEY#f', 'URI_SYNTAX'],
      ['agentauth://refresh-token', 'URI_SYNTAX'],
      ['agentauth://access-token/extra', 'URI_SYNTAX'],
      ['agentauth://Access-Token', 'URI_SYNTAX'],
      ['agentauth://access-token?version=1', 'URI_QUERY'],
      ['op://vault/item/field', 'URI_SYNTAX'],
      ['https://example.com/x', 'URI_SYNTAX'],
      ['local:/KEY', 'URI_SYNTAX'],
      ['', 'URI_SYNTAX'],
    ]
    for (const [input, code] of rejected) {
      it(`${JSON.stringify(input)} → ${code}`, () => {
        const error = parseError(input)
        assert.equal(error.code, code)
        assertUriError(error, input)
      })
    }

    it('names the supported schemes for an unknown one', () => {
      const error = parseError('azure://secret/app')
      assert.match(error.message, /unknown scheme "azure"/)
      assert.match(
        error.suggestion ?? '',
        /local:\/\/.*sanctum:\/\/.*agentsecrets:\/\/.*agentauth:\/\/.*openbao\+kv2:\/\//,
      )
    })

    it('suggests the scheme a misspelt one most likely means, without what follows it', () => {
      for (const [input, meant] of [
        ['locl://API_KEY', 'local'],
        ['Lcoal://API_KEY', 'local'],
        ['snactum://openai/key', 'sanctum'],
        ['bao+kv2://secret/app#token', 'openbao+kv2'],
      ] as const) {
        const error = parseError(input)
        assert.equal(error.code, 'URI_SYNTAX')
        assert.match(
          error.suggestion ?? '',
          new RegExp(`^Did you mean ${meant.replace('+', String.raw`\+`)}://…[?]`),
          input,
        )
        assert.ok(
          !(error.suggestion ?? '').includes(input.slice(input.indexOf('://') + 3)),
          'the rest is not echoed',
        )
      }

      // Far from every scheme (or an ordinary URL): the list of forms, no guess.
      assert.doesNotMatch(parseError('azure://secret/app').suggestion ?? '', /Did you mean/)
      assert.doesNotMatch(parseError('https://example.com/k').suggestion ?? '', /Did you mean/)
    })

    it('shows the correct form for the kind in the suggestion', () => {
      assert.match(parseError('agentauth://nope').suggestion ?? '', /agentauth:\/\/access-token/)
      assert.match(parseError('openbao://secret').suggestion ?? '', /openbao\+kv2:\/\/MOUNT\/PATH/)
    })

    it('never echoes the rejected text, only its position', () => {
      const canary = 'hunter2canary'
      for (const input of [
        `vault://user:${canary}@db.example:5432/app`,
        `local://a b ${canary}`,
        `openbao://secret/app#${canary} x`,
        `openbao://secret/app?${canary}=1`,
        `openbao://secret/app?profile=${canary}!`,
        `openbao://secret/app?version=${canary}`,
        `${canary} x://y`,
      ]) {
        const error = parseError(input)
        assert.ok(!error.message.includes(canary), error.message)
        assert.ok(!(error.suggestion ?? '').includes(canary), error.suggestion)
      }
    })

    it('other kinds pass the mount guard', () => {
      assert.doesNotThrow(() => checkMountAllowed(parseReference('local://KEY'), []))
    })
  })

  describe('formatReference', () => {
    it('canonicalises a hand-built reference', () => {
      assert.equal(
        formatReference({
          canonical: '',
          kind: 'openbao',
          path: 'secret/app',
          scheme: 'vault',
          version: 2,
          profile: 'p',
        }),
        'vault+kv2://secret/app?profile=p&version=2',
      )
    })

    it('rejects a hand-built reference with illegal parts', () => {
      assert.throws(
        () => formatReference({canonical: '', kind: 'local', path: 'a b', scheme: 'local'}),
        (error: unknown) => error instanceof UsageError && error.code === 'URI_SEGMENT',
      )
    })
  })

  describe('looksLikeReference', () => {
    const yes = [
      'local://KEY',
      'LOCAL://x',
      'sanctum://a/b',
      'agentsecrets://K',
      'agentauth://access-token',
      'openbao://secret/app',
      'OpenBao+KV2://secret/app',
      'vault://kv/x',
      'vault+kv2://kv/x',
      'hashicorp://kv/x',
      'hashicorp+kv2://kv/x',
      'local://bad name', // invalid, but must fail loudly rather than pass through
    ]
    const no = [
      'https://example.com',
      'postgres://user:pw@host/db',
      'plain value',
      '',
      'local:/x',
      ' local://x',
      'xlocal://x',
      'openbao+kv1://x',
      'op://vault/item',
      'local',
    ]
    for (const value of yes)
      it(`true for ${JSON.stringify(value)}`, () => assert.equal(looksLikeReference(value), true))
    for (const value of no)
      it(`false for ${JSON.stringify(value)}`, () => assert.equal(looksLikeReference(value), false))
  })

  describe('resourceRef (openbao.md §2)', () => {
    const vectors: Array<[salt: string, message: string, ref: string]> = [
      ['my-salt', 'openbao+kv2://secret/myapp/api#token?version=3', 'fa8719a726a6ad64'],
      ['my-salt', 'openbao+kv2://secret/app#token', 'd2378bdb5fa80133'],
      ['my-salt', 'openbao://secret/app#token', 'bd75775ec79ff006'],
      ['my-salt', 'vault+kv2://secret/myapp/api#token?version=3', '98f9885612d6a664'],
      ['my-salt', 'openbao+kv2://secret/myapp/api?profile=prod&version=3', '494735c5007c212f'],
      ['other-salt', 'openbao+kv2://secret/myapp/api#token?version=3', '7cee36931a30f659'],
    ]
    for (const [salt, message, expected] of vectors) {
      it(`${salt} / ${message} → ${expected}`, () => assert.equal(resourceRef(salt, message), expected))
    }

    it('every spelling of a secret has one ref', () => {
      assert.equal(
        resourceRef('my-salt', parseReference('openbao://secret/app#token').canonical),
        'd2378bdb5fa80133',
      )
    })
  })

  describe('properties', () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== '.' && !s.includes('..'))
    const profile = fc.option(fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/), {nil: undefined})
    const pathOf = (min: number) => fc.array(segment, {maxLength: 4, minLength: min}).map((s) => s.join('/'))
    const withProfile = (base: string, p: string | undefined) =>
      p === undefined ? base : `${base}?profile=${p}`

    const canonicalOpenbao = fc
      .record({
        field: fc.option(segment, {nil: undefined}),
        path: pathOf(2),
        profile,
        provider: fc.constantFrom('openbao', 'vault', 'hashicorp'),
        version: fc.option(
          fc.oneof(fc.integer({max: 1000, min: 1}), fc.integer({max: Number.MAX_SAFE_INTEGER, min: 1})),
          {
            nil: undefined,
          },
        ),
      })
      .map(({field, path, profile: p, provider, version}) => {
        const params = [
          p === undefined ? '' : `profile=${p}`,
          version === undefined ? '' : `version=${version}`,
        ]
        const query = params.filter(Boolean).join('&')
        return `${provider}+kv2://${path}${field === undefined ? '' : `#${field}`}${query ? `?${query}` : ''}`
      })
    const canonicalOther = fc.oneof(
      fc
        .tuple(fc.constantFrom('local', 'sanctum'), pathOf(1), profile)
        .map(([s, path, p]) => withProfile(`${s}://${path}`, p)),
      fc
        .tuple(fc.stringMatching(/^[A-Za-z_]\w{0,15}$/), profile)
        .map(([key, p]) => withProfile(`agentsecrets://${key}`, p)),
      profile.map((p) => withProfile('agentauth://access-token', p)),
    )
    const canonical = fc.oneof(canonicalOpenbao, canonicalOther)

    it('(a) canonical strings of every kind round-trip through parse and format', () => {
      fc.assert(
        fc.property(canonical, (text) => {
          const ref = parseReference(text)
          assert.equal(ref.canonical, text)
          assert.equal(formatReference(ref), text)
          assert.deepEqual(parseReference(formatReference(ref)), ref)
        }),
        {numRuns: 500},
      )
    })

    const schemes = [
      'openbao://',
      'OpenBao+KV2://',
      'vault://',
      'hashicorp+kv2://',
      'local://',
      'sanctum://',
      'agentsecrets://',
      'agentauth://',
      'agentauth://access-token',
      'openbao://secret/',
      'x://',
      '://',
    ]
    const hostile = [
      '%2F',
      '%252f',
      '%',
      '..',
      '.',
      '*',
      '#',
      '?',
      '&',
      '=',
      '/',
      '//',
      ' ',
      '\0',
      '\n',
      'é',
      '😀',
      '\uD800',
      'version=',
      'version=1',
      'profile=',
      'profile=p',
      'a',
      'Z_9',
      '-',
      ':',
      '://',
    ]
    const hostileString = fc
      .tuple(
        fc.constantFrom(...schemes),
        fc.array(fc.oneof(fc.constantFrom(...hostile), fc.string({maxLength: 3})), {maxLength: 10}),
      )
      .map(([scheme, parts]) => scheme + parts.join(''))
    const anyInput = fc.oneof(
      fc.string(),
      fc.string({unit: 'binary'}),
      fc.string({unit: 'grapheme'}),
      hostileString,
      canonical,
    )

    function parseOrUriError(input: string): SecretReference | undefined {
      try {
        return parseReference(input)
      } catch (error) {
        assertUriError(error, input)
        assert.ok(error instanceof AgentVaultError)
        return undefined
      }
    }

    it('(b) arbitrary input either parses or throws a URI_* UsageError', () => {
      fc.assert(
        fc.property(anyInput, (input) => {
          parseOrUriError(input)
        }),
        {numRuns: 3000},
      )
    })

    it('(c) any accepted input has a canonical form that re-parses to itself', () => {
      fc.assert(
        fc.property(anyInput, (input) => {
          const ref = parseOrUriError(input)
          if (!ref) return
          const again = parseReference(ref.canonical)
          assert.equal(again.canonical, ref.canonical)
          assert.deepEqual(again, ref)
          assert.equal(looksLikeReference(input), true)
        }),
        {numRuns: 3000},
      )
    })

    it('(d) a `secrets list` prefix: arbitrary input parses as a folder or throws a URI_*/LIST_PREFIX UsageError', () => {
      fc.assert(
        fc.property(anyInput, (input) => {
          let folder: SecretReference
          try {
            folder = parseFolderReference(input)
          } catch (error) {
            if (error instanceof UsageError && error.code === 'LIST_PREFIX') {
              assert.equal(error.exitCode, 2)
              assert.ok(error.suggestion)
              return
            }

            assertUriError(error, input)
            return
          }

          // A folder names no field or version, and its canonical form lists the same folder.
          if (folder.kind === 'openbao') assert.ok(folder.field === undefined && folder.version === undefined)
          assert.deepEqual(parseFolderReference(folder.canonical), folder)
        }),
        {numRuns: 3000},
      )
    })
  })

  describe('looksLikeCredential', () => {
    it('vendor tokens are credentials', () => {
      const token = fc.stringMatching(/^[\dA-Za-z]{40}$/)
      fc.assert(
        fc.property(
          token,
          fc.constantFrom(
            'sk-',
            'sk-proj-',
            'sk_live_',
            'rk_test_',
            'ghp_',
            'github_pat_',
            'glpat-',
            'xoxb-',
            'hvs.',
            'npm_',
          ),
          (body, prefix) => looksLikeCredential(prefix + body),
        ),
      )
      assert.ok(looksLikeCredential('AKIAIOSFODNN7EXAMPLE'))
      assert.ok(looksLikeCredential('s.wtT6JR1SoNqmbZax4XXuSHEp'))
      assert.ok(looksLikeCredential('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig'))
    })

    it('secret names are not: upper/lower snake case, paths, short vendor-like names', () => {
      fc.assert(
        fc.property(
          fc.stringMatching(/^[A-Z][\dA-Z_]{0,63}$/).filter((name) => !/^A[KS]IA/.test(name)),
          (name) => !looksLikeCredential(name),
        ),
      )
      for (const name of ['OPENAI_KEY', 'team/openai_key', 'sk-prod', 'gh_token', 'stripe.sk_live', 'AKIA'])
        assert.ok(!looksLikeCredential(name), name)
    })
  })
})
