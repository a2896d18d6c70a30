import fc from 'fast-check'
import assert from 'node:assert/strict'

import type {Profile} from '../../../src/core/config.js'

import {validateConfig} from '../../../src/core/config.js'
import {ConfigError, DeniedError, UsageError} from '../../../src/core/errors.js'
import {assertHostAllowed, type SecretPolicy} from '../../../src/core/use-engine.js'
import {classifyAddress, isAddressAllowed} from '../../../src/core/use/addresses.js'
import {hostInList, normaliseHostPattern, urlHost} from '../../../src/core/use/hosts.js'

function profile(settings: Profile['settings'] = {}): Profile {
  return {implicit: false, kind: 'local', name: 'p', settings}
}

function load(settings: Record<string, unknown>): ReturnType<typeof validateConfig> {
  return validateConfig({profiles: {p: {kind: 'local', ...settings}}}, 'config.json')
}

function host(url: string): string {
  return urlHost(new URL(url))
}

/** A pattern's normal form, or 'refused'. */
function answer(pattern: string): string {
  try {
    return normaliseHostPattern(pattern)
  } catch (error) {
    return error instanceof UsageError ? 'refused' : 'other'
  }
}

/** The suggestion of refusing local://A (of a profile of `kind`) for https://api.example.com/. */
function refusalSuggestion(kind: Profile['kind'], allowedDomains?: string[]): string | undefined {
  try {
    assertHostAllowed(
      new URL('https://api.example.com/v1'),
      [{allowedDomains, profile: {...profile(), kind}, reference: 'local://A'}],
      [],
    )
  } catch (error) {
    return (error as DeniedError).suggestion
  }
}

describe('core/use guards', () => {
  describe('classifyAddress', () => {
    const table: Array<[string, string]> = [
      ['8.8.8.8', 'public'],
      ['1.1.1.1', 'public'],
      ['2606:4700:4700::1111', 'public'],
      ['127.0.0.1', 'loopback'],
      ['127.255.1.2', 'loopback'],
      ['::1', 'loopback'],
      ['10.1.2.3', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['172.32.0.1', 'public'],
      ['192.168.1.1', 'private'],
      ['100.64.0.1', 'private'],
      ['fd12:3456::1', 'private'],
      ['fc00::1', 'private'],
      ['169.254.1.1', 'link-local'],
      ['fe80::1', 'link-local'],
      ['fe80::1%eth0', 'link-local'],
      ['169.254.169.254', 'metadata'],
      ['169.254.170.2', 'metadata'],
      ['100.100.100.200', 'metadata'],
      ['fd00:ec2::254', 'metadata'],
      ['0.0.0.0', 'reserved'],
      ['::', 'reserved'],
      ['224.0.0.1', 'reserved'],
      ['255.255.255.255', 'reserved'],
      ['ff02::1', 'reserved'],
      ['2001:db8::1', 'reserved'],
      ['not an address', 'reserved'],
      // IPv4 hidden in IPv6 forms is judged as the IPv4 address it reaches.
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:7f00:1', 'loopback'],
      ['::ffff:169.254.169.254', 'metadata'],
      ['::ffff:8.8.8.8', 'public'],
      ['64:ff9b::a9fe:a9fe', 'metadata'],
      ['64:ff9b::10.0.0.1', 'private'],
      ['2002:7f00:1::', 'loopback'],
      ['2002:0808:0808::', 'public'],
    ]
    for (const [address, kind] of table) {
      it(`${address} is ${kind}`, () => assert.equal(classifyAddress(address), kind))
    }

    it('an IPv4 address and its IPv4-mapped IPv6 form always agree (fast-check)', () => {
      fc.assert(
        fc.property(fc.ipV4(), (v4) => {
          assert.equal(classifyAddress(`::ffff:${v4}`), classifyAddress(v4))
        }),
      )
    })

    it('answers the same when asked again, past the remembered answers’ bound (proxy checks the same few)', () => {
      const first = table.map(([address]) => classifyAddress(address))
      // More distinct addresses than are remembered, then the table again.
      for (let i = 0; i < 600; i++) classifyAddress(`10.${i >> 8}.${i & 255}.1`)
      assert.deepEqual(
        table.map(([address]) => classifyAddress(address)),
        first,
      )
      assert.deepEqual(
        first,
        table.map(([, kind]) => kind),
      )
    })

    it('allowPrivateNetworks lets loopback/private/link-local through, never metadata or reserved', () => {
      for (const kind of ['loopback', 'private', 'link-local'] as const) {
        assert.equal(isAddressAllowed(kind, false), false)
        assert.equal(isAddressAllowed(kind, true), true)
      }

      for (const kind of ['metadata', 'reserved'] as const) assert.equal(isAddressAllowed(kind, true), false)
      assert.equal(isAddressAllowed('public', false), true)
    })
  })

  describe('host patterns', () => {
    it('normalises case, a trailing dot, IDNA and IPv4 spellings', () => {
      assert.equal(normaliseHostPattern('API.Example.COM.'), 'api.example.com')
      assert.equal(normaliseHostPattern('*.Example.com'), '*.example.com')
      assert.equal(normaliseHostPattern('bücher.example'), 'xn--bcher-kva.example')
      assert.equal(normaliseHostPattern('0x7f.1'), '127.0.0.1')
      assert.equal(normaliseHostPattern('[::1]'), '[::1]')
    })

    it('answers the same when asked again, past the remembered answers’ bound (proxy checks the same few)', () => {
      const spellings = ['API.Example.COM.', '*.Example.com', 'bücher.example', '0x7f.1', 'a.com:0443', '*']
      const first = spellings.map((pattern) => answer(pattern))
      for (let i = 0; i < 1200; i++) normaliseHostPattern(`h${i}.example.com`)
      assert.deepEqual(
        spellings.map((pattern) => answer(pattern)),
        first,
      )
      assert.deepEqual(first, [
        'api.example.com',
        '*.example.com',
        'xn--bcher-kva.example',
        '127.0.0.1',
        'a.com:443',
        'refused',
      ])
    })

    it('refuses schemes, ports, paths, user parts and stray wildcards', () => {
      for (const bad of [
        'https://a.com',
        'a.com:0',
        'a.com:65536',
        'a.com:8080:80',
        ':443',
        '*.127.0.0.1:443',
        'a.com/x',
        'u@a.com',
        '*',
        '*.',
        'a.*.com',
        '*.127.0.0.1',
        '',
        ' a.com',
      ]) {
        assert.throws(() => normaliseHostPattern(bad), UsageError, bad)
      }
    })

    it('exact entries match one host; *.suffix matches names below it, not the suffix itself', () => {
      assert.equal(hostInList(['api.example.com'], host('https://API.example.com./v1')), true)
      assert.equal(hostInList(['api.example.com'], host('https://evil-api.example.com')), false)
      assert.equal(hostInList(['*.example.com'], host('https://a.b.example.com')), true)
      assert.equal(hostInList(['*.example.com'], host('https://example.com')), false)
      assert.equal(hostInList(['*.example.com'], host('https://example.com.evil.net')), false)
      assert.equal(hostInList(['*.example.com'], host('https://notexample.com')), false)
      assert.equal(hostInList(['127.0.0.1'], host('http://2130706433/')), true)
      assert.equal(hostInList(['[::1]'], host('http://[0:0::1]:8080/')), true)
      assert.equal(hostInList(['https://bad entry'], host('https://bad')), false)
    })

    it('IDN and case spellings meet their entry; homographs and suffix tricks do not', () => {
      const list = ['bücher.example', '*.Example.COM']
      for (const url of [
        'https://xn--bcher-kva.example/',
        'https://BÜCHER.example/',
        'https://bücher\u3002example/',
        'https://bücher.example./',
        'https://A.B.EXAMPLE.com/',
        'https://a\uFF0Eexample.com/',
      ])
        assert.equal(hostInList(list, host(url)), true, url)
      for (const url of [
        'https://bucher.example/',
        'https://b\u00FCcher.example.evil/',
        'https://xn--bcher-kva.example.evil.net/',
        'https://example.com/',
        'https://evil-example.com/',
        'https://example.com.evil.net/',
        'https://\u0435xample.com/',
        'https://a.examp1e.com/',
      ])
        assert.equal(hostInList(list, host(url)), false, url)
    })

    it('an entry may name a port: it then admits that port only; without one, every port', () => {
      assert.equal(normaliseHostPattern('LocalHost:08080'), 'localhost:8080')
      assert.equal(normaliseHostPattern('[0::1]:8443'), '[::1]:8443')
      assert.equal(normaliseHostPattern('*.Example.com:443'), '*.example.com:443')
      assert.equal(normaliseHostPattern('0x7f.1:80'), '127.0.0.1:80')
      assert.equal(hostInList(['localhost:8080'], 'localhost', 8080), true)
      assert.equal(hostInList(['localhost:8080'], 'localhost', 9999), false)
      assert.equal(hostInList(['localhost'], 'localhost', 9999), true)
      assert.equal(hostInList(['[::1]:8443'], host('https://[0:0::1]:8443/'), 8443), true)
      assert.equal(hostInList(['*.example.com:443'], 'a.example.com', 443), true)
      assert.equal(hostInList(['*.example.com:443'], 'a.example.com', 8443), false)
      assert.equal(hostInList(['*.example.com:443'], 'example.com', 443), false)
    })

    it('never throws anything but a UsageError on hostile input (fast-check)', () => {
      fc.assert(
        fc.property(fc.string({unit: 'binary'}), (text) => {
          try {
            const pattern = normaliseHostPattern(text)
            assert.equal(normaliseHostPattern(pattern), pattern, 'normalising is idempotent')
          } catch (error) {
            assert.ok(error instanceof UsageError, String(error))
          }
        }),
        {numRuns: 2000},
      )
    })
  })

  describe('profile settings', () => {
    it('config.json: allowedDomains entries must be host patterns; caCert a path', () => {
      assert.deepEqual(
        load({allowedDomains: ['api.example.com', '*.example.org'], caCert: '/ca.pem'}).profiles.p,
        {
          allowedDomains: ['api.example.com', '*.example.org'],
          caCert: '/ca.pem',
          kind: 'local',
        },
      )
      assert.throws(
        () => load({allowedDomains: ['https://api.example.com']}),
        /allowedDomains must list hosts/,
      )
      assert.throws(() => load({caCert: ''}), /caCert must be the path of a PEM file/)
      assert.throws(() => load({caCert: 3}), ConfigError)
    })
  })

  describe('assertHostAllowed', () => {
    const url = new URL('https://api.example.com/v1')

    it("a secret's own list is the only one that counts for it", () => {
      const policy: SecretPolicy = {
        allowedDomains: ['other.example.com'],
        profile: profile({allowedDomains: ['api.example.com']}),
        reference: 'local://A',
      }
      assert.throws(
        () => assertHostAllowed(url, [policy], ['api.example.com']),
        (error) => {
          assert.ok(error instanceof DeniedError)
          assert.equal(error.code, 'HOST_NOT_ALLOWED')
          assert.equal(error.exitCode, 7)
          assert.match(error.message, /local:\/\/A may only be used with other\.example\.com/)
          assert.ok(error.suggestion)
          return true
        },
      )
      assertHostAllowed(url, [{...policy, allowedDomains: ['*.example.com']}], [])
    })

    it('the suggestion is the edit command where the backend edits in place (local), else storing again', () => {
      assert.equal(
        refusalSuggestion('local', ['*.other.example', "it's.example"]),
        "Call one of those hosts; if api.example.com should receive this secret, run: agentvault secrets edit local://A --allow-domain '*.other.example' --allow-domain 'it'\\''s.example' --allow-domain api.example.com",
      )
      assert.match(
        refusalSuggestion('local') ?? '',
        /, or run: agentvault secrets edit local:\/\/A --allow-domain api\.example\.com$/,
      )
      assert.match(
        refusalSuggestion('openbao', ['x.example']) ?? '',
        /store the secret again with --allow-domain x\.example --allow-domain api\.example\.com\.$/,
      )
    })

    it('a secret without a list needs the profile list or --allow-host; none → refused', () => {
      const bare: SecretPolicy = {profile: profile(), reference: 'local://B'}
      assert.throws(() => assertHostAllowed(url, [bare], []), /no allowed hosts of its own/)
      assertHostAllowed(url, [bare], ['api.example.com'])
      assertHostAllowed(url, [{...bare, profile: profile({allowedDomains: ['api.example.com']})}], [])
    })

    it('a port in the list is checked against the URL’s port (or its scheme’s default)', () => {
      const local: SecretPolicy = {
        allowedDomains: ['localhost:8080'],
        profile: profile(),
        reference: 'local://L',
      }
      assertHostAllowed(new URL('http://localhost:8080/x'), [local], [])
      // Any other port of the host: on loopback that may be a listener of the caller's own.
      assert.throws(() => assertHostAllowed(new URL('http://localhost:9999/x'), [local], []), DeniedError)
      assert.throws(() => assertHostAllowed(new URL('http://localhost/x'), [local], []), DeniedError)
      const api: SecretPolicy = {
        allowedDomains: ['api.example.com:443'],
        profile: profile(),
        reference: 'local://A',
      }
      assertHostAllowed(new URL('https://api.example.com/v1'), [api], [])
      assert.throws(
        () => assertHostAllowed(new URL('https://api.example.com:8443/v1'), [api], []),
        DeniedError,
      )
      const bare: SecretPolicy = {
        profile: profile({allowedDomains: ['127.0.0.1:8080']}),
        reference: 'local://B',
      }
      assertHostAllowed(new URL('http://127.0.0.1:8080/'), [bare], [])
      assert.throws(() => assertHostAllowed(new URL('http://127.0.0.1:8081/'), [bare], []), DeniedError)
      assertHostAllowed(new URL('http://127.0.0.1:8081/'), [bare], ['127.0.0.1:8081'])
    })

    it('every secret of a call must allow the host; a redirect is named as such', () => {
      const ok: SecretPolicy = {
        allowedDomains: ['api.example.com'],
        profile: profile(),
        reference: 'local://OK',
      }
      const no: SecretPolicy = {
        allowedDomains: ['x.example.com'],
        profile: profile(),
        reference: 'local://NO',
      }
      assert.throws(() => assertHostAllowed(url, [ok, no], []), /local:\/\/NO/)
      assert.throws(
        () => assertHostAllowed(url, [no], [], new URL('https://x.example.com/')),
        (error) =>
          error instanceof DeniedError &&
          error.code === 'REDIRECT_NOT_ALLOWED' &&
          /redirect from x\.example\.com/.test(error.message),
      )
    })
  })
})
