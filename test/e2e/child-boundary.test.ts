/**
 * The process boundary of `run`, probed by a hostile child: what the command agentvault starts can
 * get out of agentvault itself rather than out of what it is given — a core dump (it raises
 * agentvault's core limit, then sends a core-dumping signal), Node's inspector (SIGUSR1), inherited
 * descriptors and agentvault's environ, the masker and the placeholders proxy as oracles — and the
 * same doors of the other processes that hold values (proxy start, mcp). The child runs as the same
 * OS user; when the tests run as root it runs as a root without capabilities (setpriv), which the
 * kernel treats as any other process of that user. What stays open (agentvault's memory where
 * ptrace_scope is 0) is in the README, not here.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtemp, readdir, readFile, readlink, rm, writeFile} from 'node:fs/promises'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type CliResult, collect, runCli, startCli, tempHome, waitForOutput} from '../helpers/cli.js'
import {LOOPBACK_PROFILE} from '../helpers/e2e.js'
import {rawExchange, startProxy} from '../helpers/proxy.js'
import {startInPty} from '../helpers/pty.js'
import {leakedForms} from '../servers/http-upstream/fixture.js'

const SECRET = 'canary-child-boundary-REAL-5f19c2'
const PASSPHRASE = 'canary-child-boundary-PASS-77e0a4'

/** A root child without capabilities is an ordinary same-user process (CAP_SYS_RESOURCE, CAP_SYS_PTRACE gone). */
function asSameUser(command: string[]): string[] {
  return process.getuid?.() === 0
    ? ['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--', ...command]
    : command
}

/** The hard core-file limit in a /proc/PID/limits text. */
function hardCoreLimit(limits: string): string | undefined {
  return /^Max core file size\s+\S+\s+(\S+)/m.exec(limits)?.[1]
}

/** The signals whose default action dumps core, as kill(2) can send them (SIGQUIT is forwarded instead). */
const CORE_SIGNALS = ['SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGSYS', 'SIGXCPU']

/** Files in `dir` (where core_pattern `core` puts agentvault's dump) that hold a canary; all removed. */
async function dumpsWithCanary(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const name of await readdir(dir)) {
    const bytes = await readFile(join(dir, name))
    if (bytes.includes(SECRET) || bytes.includes(PASSPHRASE)) found.push(name)
    await rm(join(dir, name), {force: true})
  }

  return found
}

/**
 * An upstream the secret is allowed to reach that hands back the bearer token it was sent in the
 * places an HTTP relay may not look: 1xx interim responses, chunked trailers, a HEAD response's
 * headers, a header name, the reason phrase, a Set-Cookie/Location pair, and a close-delimited
 * HTTP/1.0 body split mid-token. Raw framing, as a hostile server writes it.
 */
function echoingUpstream(): Promise<{close(): Promise<void>; port: number; tokens: string[]}> {
  const tokens: string[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    let head = ''
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.removeAllListeners('data')
      const [method, path] = head.split(' ')
      const token = /^authorization: Bearer (.*)$/im.exec(head)?.[1]?.trim() ?? ''
      tokens.push(token)
      const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
      const replies: Record<string, string[]> = {
        '/continue': [`HTTP/1.1 100 Continue\r\nX-Echo: ${token}\r\n\r\n${ok}`],
        '/early': [`HTTP/1.1 103 Early Hints\r\nLink: </${token}>; rel=preload\r\n\r\n${ok}`],
        '/head': [
          `HTTP/1.1 200 OK\r\nX-Echo: ${token}\r\nContent-Length: ${token.length}\r\n\r\n${method === 'HEAD' ? '' : token}`,
        ],
        '/header-name': [`HTTP/1.1 200 OK\r\nX-${token}: 1\r\nContent-Length: 0\r\n\r\n`],
        '/http10': [`HTTP/1.0 200 OK\r\n\r\n${token.slice(0, 7)}`, `${token.slice(7)} end`],
        '/reason': [`HTTP/1.1 299 ${token}\r\nContent-Length: 0\r\n\r\n`],
        '/redirect': [
          `HTTP/1.1 302 Found\r\nSet-Cookie: s=${token}\r\nLocation: http://127.0.0.9/${token}\r\nContent-Length: 0\r\n\r\n`,
        ],
        '/trailer': [
          `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Echo\r\n\r\n2\r\nok\r\n0\r\nX-Echo: ${token}\r\n\r\n`,
        ],
      }
      // Each part written once the one before it drained: a body split across reads.
      const parts = replies[path ?? ''] ?? ['HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n']
      const next = (): void => {
        const part = parts.shift()
        if (part === undefined) socket.end()
        else socket.write(part, 'latin1', () => setImmediate(next))
      }

      next()
    })
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      resolve({
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          }),
        port,
        tokens,
      })
    })
  })
}

/**
 * The child: each probe on a connection of its own to the proxy (raw HTTP, absolute-form), every
 * byte it gets back appended to the file it is given. Also asks the proxy about itself.
 */
const ORACLE_CHILD = `
const net = require('node:net'), fs = require('node:fs')
const [out, upstream] = process.argv.slice(1)
const proxy = Number(new URL(process.env.HTTP_PROXY).port)
const K = process.env.K
const probes = [
  ['GET', '/trailer', 'TE: trailers\\r\\n'],
  ['GET', '/early', ''],
  ['POST', '/continue', 'Expect: 100-continue\\r\\nContent-Length: 2\\r\\n'],
  ['HEAD', '/head', ''],
  ['GET', '/head', ''],
  ['GET', '/header-name', ''],
  ['GET', '/http10', ''],
  ['GET', '/reason', ''],
  ['GET', '/redirect', ''],
].map(([method, path, extra]) => method + ' http://127.0.0.1:' + upstream + path + ' HTTP/1.1\\r\\nHost: 127.0.0.1:' + upstream +
  '\\r\\nAuthorization: Bearer ' + K + '\\r\\nConnection: close\\r\\n' + extra + '\\r\\n' + (method === 'POST' ? 'hi' : ''))
// The proxy's own port, as an allowed host: the value goes to the proxy itself.
probes.push('GET http://127.0.0.1:' + proxy + '/' + K + ' HTTP/1.1\\r\\nHost: 127.0.0.1:' + proxy +
  '\\r\\nAuthorization: Bearer ' + K + '\\r\\nConnection: close\\r\\n\\r\\n')
;(async () => {
  for (const probe of probes) {
    const bytes = await new Promise((resolve) => {
      const chunks = []
      const socket = net.connect(proxy, '127.0.0.1', () => socket.write(probe))
      socket.on('data', (chunk) => chunks.push(chunk))
      socket.on('close', () => resolve(Buffer.concat(chunks)))
      socket.on('error', () => {})
    })
    fs.appendFileSync(out, '==== ' + probe.split('\\r\\n')[0] + '\\n' + bytes.toString('latin1') + '\\n')
  }
})()
`

/**
 * The child's view, into the file it is given: its open descriptors and where they lead (the one
 * listing them is closed by then), then whether agentvault's environment (/proc/PPID/environ)
 * holds a canary.
 */
const FD_CHILD = `
import os, sys
fds = {}
for fd in os.listdir('/proc/self/fd'):
    try:
        fds[fd] = os.readlink('/proc/self/fd/' + fd)
    except OSError:
        pass
environ = open('/proc/%d/environ' % os.getppid(), 'rb').read()
with open(sys.argv[1], 'w') as out:
    for fd, target in fds.items():
        out.write('%s -> %s\\n' % (fd, target))
    if b'${SECRET}' in environ or b'${PASSPHRASE}' in environ:
        out.write('environ-leaks\\n')
`

/** Descriptors of the test process itself: what agentvault inherited from outside (passed on by design). */
async function ownDescriptors(): Promise<Map<string, string>> {
  const own = new Map<string, string>()
  for (const fd of await readdir('/proc/self/fd'))
    own.set(fd, await readlink(`/proc/self/fd/${fd}`).catch(() => ''))
  return own
}

/** The descriptors the child holds beyond stdin, stdout and stderr that it did not inherit from the test. */
async function extraDescriptors(report: string): Promise<string[]> {
  const own = await ownDescriptors()
  const text = await readFile(report, 'utf8')
  assert.match(text, /^0 -> /m, text)
  assert.doesNotMatch(text, /environ-leaks/, 'agentvault’s environ holds a canary')
  return text.split('\n').flatMap((line) => {
    const [, fd, target] = /^(\d+) -> (.*)$/.exec(line) ?? []
    return fd !== undefined && Number(fd) > 2 && own.get(fd) !== target ? [`${fd} -> ${target}`] : []
  })
}

function bubblewrapWorks(): boolean {
  const probe = spawnSync('bwrap', ['--dev-bind', '/', '/', '--unshare-pid', '--proc', '/proc', 'true'], {
    stdio: 'ignore',
  })
  return !probe.error && probe.status === 0
}

/** `pid`'s core limits (soft, hard) once a same-user process tried to raise them, as a child of it could. */
async function coreLimitAfterRaising(pid: number): Promise<string[]> {
  const raise = `prlimit --pid ${pid} --core=unlimited:unlimited 2>/dev/null || prlimit --pid ${pid} --core=unlimited: 2>/dev/null; true`
  const [command, ...args] = asSameUser(['sh', '-c', raise]) as [string, ...string[]]
  spawnSync(command, args, {stdio: 'ignore'})
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8')
  const limit = /^Max core file size\s+(\S+)\s+(\S+)/m.exec(limits)
  assert.ok(limit, limits)
  return [limit[1]!, limit[2]!]
}

describe('e2e: run against a hostile child, at the process boundary', function () {
  this.timeout(60_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv
  let cwd: string
  const cli = (args: string[], input?: string): Promise<CliResult> => runCli(args, {cwd, env, input})

  before(async () => {
    t = await tempHome()
    env = {...t.env, AGENTVAULT_PASSPHRASE: PASSPHRASE}
    cwd = await mkdtemp(join(tmpdir(), 'av-boundary-'))
    // Loopback reachable (the oracle probes' upstream); the core probes do not care.
    const added = await cli(LOOPBACK_PROFILE)
    assert.equal(added.code, 0, added.stderr)
    const stored = await cli(['secrets', 'set', 'K'], SECRET)
    assert.equal(stored.code, 0, stored.stderr)
  })

  after(async () => {
    if (cwd) await rm(cwd, {force: true, recursive: true})
    await t?.dispose()
  })

  describe('core dumps: the child raises agentvault’s core limit and sends it a core-dumping signal', () => {
    // /proc, prlimit and setpriv (util-linux, there wherever Linux is; Debian: essential).
    before(function () {
      if (process.platform !== 'linux') this.skip()
    })

    for (const mode of [[], ['--placeholders']]) {
      for (const signal of CORE_SIGNALS) {
        it(`${['run', ...mode].join(' ')}: ${signal} leaves no core file, and the limit cannot be raised`, async () => {
          // As the child could run it: raise agentvault's limit (soft and hard, else soft), note it
          // in a file (agentvault, killed, relays no more output), then send the signal and leave
          // at once (nothing outlives the test).
          const hostile = [
            'prlimit --pid "$PPID" --core=unlimited:unlimited 2>/dev/null || prlimit --pid "$PPID" --core=unlimited: 2>/dev/null',
            'grep "^Max core file size" "/proc/$PPID/limits" > "$1"',
            `kill -${signal.slice(3)} "$PPID"`,
          ].join('\n')
          const report = join(t.home, 'limits')
          await rm(report, {force: true})
          const result = await cli([
            'run',
            ...mode,
            '--env',
            'K=local://K',
            '--',
            ...asSameUser(['sh', '-c', hostile, 'hostile', report]),
          ])
          const limits = await readFile(report, 'utf8').catch(() => '')
          const limit = /^Max core file size\s+(\S+)\s+(\S+)/m.exec(limits)
          assert.ok(limit, `the child could not read agentvault's limits: ${limits}${result.stderr}`)
          assert.deepEqual([limit[1], limit[2]], ['0', '0'], 'the child raised agentvault’s core limit')
          assert.deepEqual(await dumpsWithCanary(cwd), [], 'a core file of agentvault holds the canary')
        })
      }
    }

    it('a credential withheld from the command (BAO_TOKEN) is guarded too; with nothing withheld, no prlimit is run', async () => {
      // Without the passphrase (the vault is not opened: no reference), the home's key file is the
      // command's to read anyway: a core file would give it nothing more, and the fork is saved.
      const plain = {...env}
      delete plain.AGENTVAULT_PASSPHRASE
      const limitsOfParent = async (extra: NodeJS.ProcessEnv): Promise<string> => {
        const result = await runCli(
          [
            'run',
            '--',
            ...asSameUser([
              'sh',
              '-c',
              'prlimit --pid "$PPID" --core=unlimited:unlimited 2>/dev/null; grep "^Max core file size" "/proc/$PPID/limits"',
            ]),
          ],
          {cwd, env: {...plain, ...extra}},
        )
        assert.equal(result.code, 0, result.stderr)
        return result.stdout
      }

      assert.equal(hardCoreLimit(await limitsOfParent({BAO_TOKEN: 'canary-child-boundary-TOKEN-0c7e'})), '0')
      // Left as inherited (where this runner's own hard limit is 0 there is nothing to tell apart).
      const own = hardCoreLimit(await readFile('/proc/self/limits', 'utf8'))
      if (own !== '0') assert.equal(hardCoreLimit(await limitsOfParent({})), own)
    })

    it('the command itself starts with the limits agentvault runs under, but cannot raise them either', async () => {
      // Documented (README, run --placeholders limits): a core of the command would hold what it was given.
      const result = await cli([
        'run',
        '--env',
        'K=local://K',
        '--',
        ...asSameUser(['sh', '-c', 'grep "^Max core file size" /proc/self/limits']),
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stdout, /^Max core file size\s+0\s+0\b/m)
    })
  })

  describe('descriptors and environ: the child inherits nothing of agentvault’s', () => {
    // /proc, prlimit and setpriv (util-linux, there wherever Linux is; Debian: essential).
    before(function () {
      if (process.platform !== 'linux') this.skip()
    })

    const modes: string[][] = [
      [],
      ['--mask', 'always'],
      ['--mask', 'never'],
      ['--placeholders'],
      ['--placeholders', '--mask', 'never'],
      ['--placeholders', '--isolate'],
    ]
    for (const mode of modes) {
      it(`${['run', ...mode].join(' ')}, stdin a pipe: only 0, 1 and 2; no canary in agentvault’s environ`, async function () {
        if (mode.includes('--isolate') && !bubblewrapWorks()) this.skip()
        const report = join(t.home, 'fds')
        const envFile = join(t.home, 'plain.env')
        await writeFile(envFile, 'PLAIN=text\nF=local://K\n')
        const result = await cli(
          [
            'run',
            ...mode,
            '--env-file',
            envFile,
            '--env',
            'K=local://K',
            '--',
            'python3',
            '-c',
            FD_CHILD,
            report,
          ],
          'stdin text',
        )
        assert.equal(result.code, 0, result.stderr)
        assert.deepEqual(await extraDescriptors(report), [])
      })
    }

    it('run with stdin, stdout and stderr a terminal: only 0, 1 and 2', async () => {
      const report = join(t.home, 'fds-tty')
      const pty = startInPty(['run', '--env', 'K=local://K', '--', 'python3', '-c', FD_CHILD, report], env)
      const result = await pty.result
      assert.equal(result.code, 0, result.stdout + result.stderr)
      assert.deepEqual(await extraDescriptors(report), [])
    })
  })

  describe('masking as an oracle: the command never holds a stood-in value, so nothing is held back for it', () => {
    // Holding back what could begin a value would tell a command that can read agentvault's output
    // (a log it is redirected to) which guess begins it, byte by byte. A whole value is still
    // concealed (issue 15: should one ever reach the command): a whole guess can be confirmed, which
    // only matters for a value that can be guessed at all.
    it('--placeholders: the start of the real value comes out at once; the whole value is concealed', async () => {
      // The command prints a correct prefix, then waits for a line on stdin: the prefix must be
      // out while it waits (with hold-back it would stay held until the command exits: no idle
      // flush within the test's time, AGENTVAULT_MASK_FLUSH_MS).
      const prefix = SECRET.slice(0, 20)
      const child = startCli(
        [
          'run',
          '--placeholders',
          '--env',
          'K=local://K',
          '--',
          'sh',
          '-c',
          `printf '[%s' "${prefix}"; read line; printf '] [%s]' "${SECRET}"`,
        ],
        {cwd, env: {...env, AGENTVAULT_MASK_FLUSH_MS: '600000'}, openStdin: true},
      )
      const result = collect(child)
      await waitForOutput(child, `[${prefix}`)
      child.stdin!.end('go\n')
      const {code, stderr, stdout} = await result
      assert.equal(code, 0, stderr)
      assert.equal(stdout, `[${prefix}] [<concealed by agentvault>]`)
    })

    it('--placeholders --pass-env: a credential the command does hold is still masked', async () => {
      const token = 'canary-child-boundary-TOKEN-9b31'
      const result = await runCli(
        [
          'run',
          '--placeholders',
          '--pass-env',
          'BAO_TOKEN',
          '--env',
          'K=local://K',
          '--',
          'sh',
          '-c',
          'echo "[$BAO_TOKEN] [$K]"',
        ],
        {cwd, env: {...env, BAO_TOKEN: token}},
      )
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stdout, /^\[<concealed by agentvault>\] \[avph_K_[\da-f]{32}\]\n$/)
    })
  })

  describe('the placeholders proxy as an oracle', () => {
    let upstream: Awaited<ReturnType<typeof echoingUpstream>>

    before(async () => {
      upstream = await echoingUpstream()
    })

    after(() => upstream?.close())

    it('an allowed upstream echoing the value in 1xx, trailers, HEAD headers, a header name, the reason, a redirect, an HTTP/1.0 body, and the proxy asked about itself: the child gets placeholders only', async () => {
      const out = join(t.home, 'oracle')
      const result = await cli([
        'run',
        '--placeholders',
        '--allow-domain',
        '127.0.0.1',
        '--env',
        'K=local://K',
        '--',
        process.execPath,
        '-e',
        ORACLE_CHILD,
        out,
        String(upstream.port),
      ])
      assert.equal(result.code, 0, result.stderr)
      const seen = await readFile(out, 'latin1')
      // The probes reached the upstream with the real value (so each echo was one to turn back) ...
      assert.ok(upstream.tokens.length >= 9, `${upstream.tokens.length} requests: ${seen}`)
      for (const token of upstream.tokens) assert.equal(token, SECRET)
      // ... and the echoes came back as the placeholder, or not at all.
      assert.match(seen, /X-Echo: avph_K_[\da-f]{32}\r\n/)
      assert.match(seen, /avph_K_[\da-f]{32} end/)
      for (const form of leakedForms(SECRET))
        assert.ok(!seen.includes(form), `${form} reached the child:\n${seen}`)
      assert.ok(!(result.stdout + result.stderr).includes(SECRET))
    })
  })

  describe('the long-running servers hold values too: their core limit cannot be raised either', () => {
    // /proc, prlimit and setpriv (util-linux, there wherever Linux is; Debian: essential).
    before(function () {
      if (process.platform !== 'linux') this.skip()
    })

    it('proxy start', async () => {
      const proxy = await startProxy(env)
      try {
        assert.deepEqual(await coreLimitAfterRaising(proxy.child.pid!), ['0', '0'])
      } finally {
        await proxy.stop()
      }
    })

    it('mcp (its agent is its parent: README says what that parent can still read)', async () => {
      const server = startCli(['mcp', '--allow', 'local://K'], {env, openStdin: true})
      try {
        const initialize = {
          id: 1,
          jsonrpc: '2.0',
          method: 'initialize',
          params: {
            capabilities: {},
            clientInfo: {name: 'probe', version: '1'},
            protocolVersion: '2025-06-18',
          },
        }
        server.stdin?.write(`${JSON.stringify(initialize)}\n`)
        await waitForOutput(server, '"id":1')
        assert.deepEqual(await coreLimitAfterRaising(server.pid!), ['0', '0'])
      } finally {
        server.stdin?.end()
        await new Promise((resolve) => {
          if (server.exitCode === null && server.signalCode === null) server.once('exit', resolve)
          else resolve(null)
        })
      }
    })
  })

  describe('SIGUSR1 (Node opens its inspector, which reads the whole heap) is refused by every process that holds values', () => {
    // `kill -USR1` by any process of the user, then /json/list on 127.0.0.1:9229 and a heap
    // snapshot over the WebSocket: the vault key and every value, whatever ptrace_scope says.
    const INSPECTOR = /Debugger listening|inspector/i

    it('run: the command signals agentvault as it starts', async () => {
      // It ignores the SIGUSR1 agentvault forwards; a request to the placeholders proxy (served by
      // agentvault's main thread) follows, so agentvault lives on past the signal.
      const ask = `require('http').get({agent: false, host: '127.0.0.1', path: 'http://127.0.0.1:1/', port: new URL(process.env.HTTP_PROXY).port}, (r) => r.resume()).on('error', () => {})`
      const child = `trap '' USR1; kill -USR1 "$PPID"; "${process.execPath}" -e "${ask}"`
      const result = await cli(['run', '--placeholders', '--env', 'K=local://K', '--', 'sh', '-c', child])
      assert.equal(result.code, 0, result.stderr)
      assert.doesNotMatch(result.stderr, INSPECTOR)
    })

    it('proxy start', async () => {
      const proxy = await startProxy(env)
      let stderr: string
      try {
        process.kill(proxy.child.pid!, 'SIGUSR1')
        // A round trip after the signal: the process is alive and served it.
        const reply = await rawExchange(
          proxy.port,
          `GET / HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nConnection: close\r\n\r\n`,
        )
        assert.match(reply, /^HTTP\/1\.1 \d{3}/)
      } finally {
        stderr = (await proxy.stop()).stderr
      }

      assert.doesNotMatch(stderr, INSPECTOR)
    })

    it('mcp', async () => {
      const server = startCli(['mcp', '--allow', 'local://K'], {env, openStdin: true})
      let stderr = ''
      server.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8')
      })
      const exited = new Promise((resolve) => {
        server.once('close', resolve)
      })
      const send = (message: object): void => {
        server.stdin?.write(`${JSON.stringify({jsonrpc: '2.0', ...message})}\n`)
      }

      const initialized = waitForOutput(server, '"id":1')
      send({
        id: 1,
        method: 'initialize',
        params: {capabilities: {}, clientInfo: {name: 'probe', version: '1'}, protocolVersion: '2025-06-18'},
      })
      await initialized
      process.kill(server.pid!, 'SIGUSR1')
      const pinged = waitForOutput(server, '"id":2')
      send({id: 2, method: 'ping'})
      await pinged
      server.stdin?.end()
      await exited
      assert.equal(server.exitCode, 0, stderr)
      assert.doesNotMatch(stderr, INSPECTOR)
    })

    it('call, while its request (the value in it) waits for a slow upstream', async () => {
      // An upstream that reads the request and answers only once the signal has been sent.
      let answer: (() => void) | undefined
      const arrived = new Promise<void>((resolve) => {
        answer = resolve
      })
      const slow = createServer((socket) => {
        socket.once('data', () => {
          answer?.()
          socket.once('send', () =>
            socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
          )
        })
        socket.on('error', () => {})
        held.push(socket)
      })
      const held: Socket[] = []
      await new Promise<void>((resolve) => {
        slow.listen(0, '127.0.0.1', resolve)
      })
      const url = `http://127.0.0.1:${(slow.address() as {port: number}).port}/`
      try {
        const child = startCli(['call', url, '--bearer', 'K', '--allow-domain', '127.0.0.1'], {cwd, env})
        const result = collect(child)
        await arrived
        process.kill(child.pid!, 'SIGUSR1')
        for (const socket of held) socket.emit('send')
        const {code, stderr, stdout} = await result
        assert.equal(code, 0, stderr)
        assert.match(stdout, /ok/)
        assert.doesNotMatch(stderr, INSPECTOR)
      } finally {
        for (const socket of held) socket.destroy()
        await new Promise((resolve) => {
          slow.close(resolve)
        })
      }
    })
  })

  it('prlimit missing from PATH: run still runs the command', async () => {
    const path = spawnSync('sh', ['-c', 'command -v sh'], {encoding: 'utf8'}).stdout.trim()
    const result = await runCli(['run', '--env', 'K=local://K', '--', path, '-c', 'echo "[$K]"'], {
      cwd,
      env: {...env, PATH: '/nonexistent'},
    })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, '[<concealed by agentvault>]\n')
  })
})
