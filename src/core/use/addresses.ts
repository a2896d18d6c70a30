/**
 * What kind of network an IP address belongs to, for the SSRF guard of the use engine
 * (product.md §5). Pure: parses the textual address itself, so IPv4-mapped, NAT64 and 6to4 forms of
 * a private IPv4 address are recognised as that address.
 */
import {isIPv4, isIPv6} from 'node:net'

/**
 * - `public`: anything routable on the internet;
 * - `loopback`, `private`, `link-local`: refused unless the profile sets `allowPrivateNetworks`;
 * - `metadata`: cloud instance-metadata endpoints, refused always (they hand out cloud credentials);
 * - `reserved`: unspecified, multicast, broadcast, documentation and tunnelling ranges, refused always.
 */
export type AddressClass = 'link-local' | 'loopback' | 'metadata' | 'private' | 'public' | 'reserved'

/** Classes a profile's `allowPrivateNetworks: true` lets through. */
export const PRIVATE_CLASSES: ReadonlySet<AddressClass> = new Set(['link-local', 'loopback', 'private'])

type Range4 = readonly [base: string, prefix: number, kind: AddressClass]

/** Exact cloud metadata addresses (AWS, GCP, Azure, OpenStack, Alibaba, Oracle, ECS, Azure WireServer). */
const METADATA_V4 = new Set([
  '100.100.100.200',
  '168.63.129.16',
  '169.254.169.254',
  '169.254.170.2',
  '192.0.0.192',
])
/** AWS IMDS over IPv6. */
const METADATA_V6 = new Set(['fd00:ec2:0:0:0:0:0:254'])

const RANGES_V4: readonly Range4[] = [
  ['0.0.0.0', 8, 'reserved'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'private'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'private'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'reserved'],
  ['240.0.0.0', 4, 'reserved'],
]

function ipv4ToNumber(text: string): number {
  return text.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0)
}

function numberToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join('.')
}

function inRange(value: number, base: string, prefix: number): boolean {
  const size = 2 ** (32 - prefix)
  return Math.floor(value / size) === Math.floor(ipv4ToNumber(base) / size)
}

function classifyIpv4(value: number): AddressClass {
  if (METADATA_V4.has(numberToIpv4(value))) return 'metadata'
  for (const [base, prefix, kind] of RANGES_V4) if (inRange(value, base, prefix)) return kind
  return 'public'
}

function parseGroups(part: string): number[] {
  return part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16))
}

/** The eight 16-bit groups of a valid IPv6 address (zone id dropped, embedded dotted quad expanded). */
function ipv6Groups(text: string): number[] {
  let rest = text.split('%')[0] ?? ''
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(rest)
  if (dotted?.[1]) {
    const v4 = ipv4ToNumber(dotted[1])
    rest = rest.slice(0, -dotted[1].length) + `${(v4 >>> 16).toString(16)}:${(v4 & 0xff_ff).toString(16)}`
  }

  const [head = '', tail] = rest.split('::')
  const left = parseGroups(head)
  const right = tail === undefined ? [] : parseGroups(tail)
  return [...left, ...Array.from({length: 8 - left.length - right.length}, () => 0), ...right]
}

/**
 * The IPv4 address an IPv6 address reaches, for the forms that embed one: IPv4-mapped
 * ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96 and 6to4 2002:a.b.c.d::/48.
 */
function embeddedIpv4(groups: number[]): number | undefined {
  const g = (i: number): number => groups[i] ?? 0
  const zeros = (from: number, to: number): boolean => groups.slice(from, to).every((x) => x === 0)
  if (zeros(0, 5) && (g(5) === 0xff_ff || g(5) === 0)) return g(6) * 65_536 + g(7)
  if (g(0) === 0x64 && g(1) === 0xff_9b && zeros(2, 6)) return g(6) * 65_536 + g(7)
  if (g(0) === 0x20_02) return g(1) * 65_536 + g(2)
  return undefined
}

function classifyIpv6(groups: number[]): AddressClass {
  const g = (i: number): number => groups[i] ?? 0
  if (METADATA_V6.has(groups.map((x) => x.toString(16)).join(':'))) return 'metadata'
  if (groups.every((x) => x === 0)) return 'reserved' // ::
  if (groups.slice(0, 7).every((x) => x === 0) && g(7) === 1) return 'loopback' // ::1
  const v4 = embeddedIpv4(groups)
  if (v4 !== undefined) return classifyIpv4(v4)
  if (g(0) === 0x64 && g(1) === 0xff_9b && g(2) === 1) return 'private' // local-use NAT64
  if (g(0) === 0x20_01 && g(1) === 0) return 'reserved' // Teredo hides its IPv4 endpoints
  if (g(0) === 0x20_01 && g(1) === 0xd_b8) return 'reserved' // documentation
  if (g(0) === 0x01_00 && groups.slice(1, 4).every((x) => x === 0)) return 'reserved' // discard-only 100::/64
  if ((g(0) & 0xfe_00) === 0xfc_00) return 'private' // unique local fc00::/7
  if ((g(0) & 0xff_c0) === 0xfe_80) return 'link-local' // fe80::/10
  if ((g(0) & 0xff_c0) === 0xfe_c0) return 'private' // deprecated site-local fec0::/10
  if ((g(0) & 0xff_00) === 0xff_00) return 'reserved' // multicast
  return 'public'
}

/**
 * Whether `hostname` (a URL's, IPv6 in brackets or not) is this machine: `localhost` and its
 * subdomains, or a loopback address. What may carry values over plain http:// by default.
 */
export function isLoopbackHost(hostname: string): boolean {
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
  return hostname === 'localhost' || hostname.endsWith('.localhost') || classifyAddress(bare) === 'loopback'
}

/**
 * Classify a textual IP address (as `dns.lookup` returns it, or an IP literal without brackets).
 * Anything that is not a valid IP address is `reserved`, so a caller can never connect to it by
 * mistake.
 */
export function classifyAddress(address: string): AddressClass {
  let kind = classified.get(address)
  if (kind === undefined) {
    kind = isIPv4(address)
      ? classifyIpv4(ipv4ToNumber(address))
      : isIPv6(address)
        ? classifyIpv6(ipv6Groups(address))
        : 'reserved'
    // A pure function of the text: a long-lived process (`proxy`) checks the same few addresses
    // request after request. Bounded: ever new addresses only ever refill it.
    if (classified.size >= MAX_CLASSIFIED) classified.clear()
    classified.set(address, kind)
  }

  return kind
}

const MAX_CLASSIFIED = 256
const classified = new Map<string, AddressClass>()

/** Whether a connection to an address of this class may be made, given the profile's setting. */
export function isAddressAllowed(kind: AddressClass, allowPrivateNetworks: boolean): boolean {
  return kind === 'public' || (allowPrivateNetworks && PRIVATE_CLASSES.has(kind))
}
