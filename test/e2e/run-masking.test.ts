/**
 * `run`'s masking through the built binary: the encodings real programs print (issue 11 §3), and
 * held-back bytes written after a short idle time (issue 12 §5).
 */
import fc from 'fast-check'
import assert from 'node:assert/strict'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {closeSync, openSync, readFileSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {IDLE_FLUSH_MS} from '../../src/core/output-pump.js'
import {baseEnv, BIN, ROOT, runCli, tempHome} from '../helpers/cli.js'

const MASK = '<concealed by agentvault>'
/** Characters that every encoder escapes differently: quote, backslash, slash, HTML, non-ASCII, astral. */
const TRICKY = `Pä/ss"w\\<rd>&'(x)*!~ é😀-canary-91c4`
const PLAIN = 'canary-plain-5be02d17aa'
const PROMPT = 'hunter2-canary-0e7f'
/** Shell-special characters around single quotes: what shells' and Python's quoting rewrites. */
const QUOTED = `it's a "canary" & (more); $x #9f21~`
/** Too short to mask (under 4 bytes). */
const SHORT = 'q7z'

function has(command: string, ...args: string[]): boolean {
  const probe = spawnSync(command, args, {stdio: 'ignore'})
  return !probe.error && probe.status === 0
}

/**
 * Start `run` in its own process group (so the test can stop it, the child and its children at
 * once) and read its stdout as it arrives.
 */
function startRun(
  args: string[],
  env: NodeJS.ProcessEnv,
): {child: ChildProcess; seen: () => string; stop(): void} {
  const child = spawn(process.execPath, [BIN, 'run', ...args], {
    cwd: ROOT,
    detached: true,
    env: baseEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let seen = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    seen += chunk.toString('utf8')
  })
  return {
    child,
    seen: () => seen,
    stop() {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
    },
  }
}

/** Resolve with all stdout so far once it includes `text`; reject if the process ends first. */
function outputIncludes(child: ChildProcess, seen: () => string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!seen().includes(text)) return
      child.stdout?.off('data', check)
      resolve(seen())
    }

    child.stdout?.on('data', check)
    child.once('close', () =>
      reject(new Error(`run ended before printing ${JSON.stringify(text)}: ${JSON.stringify(seen())}`)),
    )
    check()
  })
}

describe('e2e: run masking', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCli(['run', ...args], {env: {...t.env, ...env}})
  const refs = ['--env', 'T=local://TRICKY', '--env', 'P=local://PLAIN']

  before(async () => {
    t = await tempHome()
    for (const [name, value] of [
      ['TRICKY', TRICKY],
      ['PLAIN', PLAIN],
      ['PROMPT', PROMPT],
      ['SHORT', SHORT],
    ]) {
      const stored = await runCli(['secrets', 'set', name!], {env: t.env, input: value})
      assert.equal(stored.code, 0, stored.stderr)
    }
  })

  after(() => t.dispose())

  /** Run `script` under sh with the secrets as $T and $P; the output must hold neither in any form. */
  async function maskedLines(script: string, expectedMasks: number): Promise<string> {
    const result = await run([...refs, '--', 'sh', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    for (const value of [TRICKY, PLAIN]) assert.ok(!result.stdout.includes(value), result.stdout)
    assert.equal(result.stdout.split(MASK).length - 1, expectedMasks, result.stdout)
    return result.stdout
  }

  describe('encodings printed by real programs', () => {
    it('base64 (coreutils): behind a prefix of each length, with a trailing newline, both values', async () => {
      const script = [
        'printf %s "$P" | base64',
        'printf "user:%s" "$P" | base64', // 5-byte prefix: alignment 2, what curl -v -u prints
        'printf "u:%s" "$P" | base64', // alignment 2
        'printf "ab:%s" "$P" | base64', // alignment 0 (3-byte prefix), then more bytes
        'printf "x%s" "$T" | base64 -w0; echo',
        'echo "$P" | base64',
        'echo "$T" | base64 -w0; echo',
      ].join('; ')
      const out = await maskedLines(script, 7)
      assert.ok(!out.includes(Buffer.from(`user:${PLAIN}`).toString('base64')))
    })

    it('base64 (Python), and the Authorization header curl -v prints', async function () {
      if (!has('python3', '-c', 'pass')) this.skip()
      const script = `python3 -c 'import base64, os; print("> Authorization: Basic " + base64.b64encode(("admin:" + os.environ["P"]).encode()).decode()); print(base64.urlsafe_b64encode(("xy" + os.environ["T"]).encode()).decode())'`
      const out = await maskedLines(script, 2)
      assert.match(out, /^> Authorization: Basic [A-Za-z0-9+/]{0,8}<concealed by agentvault>/)
    })

    it('UTF-16LE: a PowerShell -EncodedCommand naming the value, and the raw UTF-16LE bytes', async function () {
      if (!has('python3', '-c', 'pass')) this.skip()
      const script = `python3 -c 'import base64, os, sys; print("pwsh -EncodedCommand " + base64.b64encode(("$env:T = \\"" + os.environ["T"] + "\\"").encode("utf-16-le")).decode()); sys.stdout.flush(); sys.stdout.buffer.write(("token " + os.environ["P"] + "\\n").encode("utf-16-le"))'`
      const result = await run([...refs, '--', 'sh', '-c', script])
      assert.equal(result.code, 0, result.stderr)
      const [command = ''] = result.stdout.split('\n')
      const encoded = command.replace('pwsh -EncodedCommand ', '')
      for (const value of [TRICKY, PLAIN]) {
        const utf16 = Buffer.from(value, 'utf16le')
        assert.ok(!Buffer.from(encoded.replaceAll(/[^\w+/=]/g, ''), 'base64').includes(utf16), command)
        assert.ok(!result.stdoutBytes.includes(utf16), 'raw UTF-16LE survived')
      }

      assert.equal(result.stdout.split(MASK).length - 1, 2, result.stdout)
    })

    it('JSON: Python json.dumps (ASCII and not), Node JSON.stringify', async function () {
      if (!has('python3', '-c', 'pass')) this.skip()
      const script = [
        `python3 -c 'import json, os; print(json.dumps({"t": os.environ["T"]})); print(json.dumps(os.environ["T"], ensure_ascii=False))'`,
        `node -e 'console.log(JSON.stringify({t: process.env.T}))'`,
      ].join('; ')
      const out = await maskedLines(script, 3)
      assert.ok(out.startsWith(`{"t": "${MASK}"}\n`), out)
    })

    it('JSON: PHP json_encode (with \\/ and \\u escapes)', async function () {
      if (!has('php', '-r', 'exit(0);')) this.skip()
      const script = `php -r 'echo json_encode(["t" => getenv("T")]), "\\n", json_encode(getenv("T"), JSON_UNESCAPED_UNICODE), "\\n";'`
      await maskedLines(script, 2)
    })

    it('URL: Python quote(safe=""), quote, quote_plus, lower-case hex; printf with %20 in sh', async function () {
      if (!has('python3', '-c', 'pass')) this.skip()
      const script = [
        `python3 -c 'import os, re, urllib.parse as u; t = os.environ["T"]; print("?a=" + u.quote(t, safe="") + "&b=1"); print(u.quote(t)); print(u.quote_plus(t)); print(re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), u.quote(t, safe=""))); print(u.urlencode({"t": t}))'`,
      ].join('; ')
      await maskedLines(script, 5)
    })

    it('URL keeping reserved characters: Node encodeURI; Python quote with safe= as Go escapes a path segment and a path', async function () {
      if (!has('python3', '-c', 'pass')) this.skip()
      const script = [
        `node -e 'console.log(encodeURI("https://example.test/" + process.env.T))'`,
        `python3 -c 'import os, urllib.parse as u; t = os.environ["T"]; print(u.quote(t, safe="$&+:=@")); print(u.quote(t, safe="$&+,/:;=@"))'`,
      ].join('; ')
      const out = await maskedLines(script, 3)
      assert.ok(out.startsWith(`https://example.test/${MASK}\n`), out)
    })

    it('URL: jQuery.param and the idiom it uses (encodeURIComponent, then + for space); JavaScript escape()', async () => {
      const script = [
        `node -e 'console.log(encodeURIComponent(process.env.T).replace(/%20/g, "+"))'`,
        `node -e 'console.log("a=1&t=" + encodeURIComponent(process.env.P).replace(/%20/g, "+"))'`,
        `node -e 'console.log(escape(process.env.T)); console.log("t=" + escape(process.env.P) + ";")'`,
      ].join('; ')
      const out = await maskedLines(script, 4)
      assert.ok(out.startsWith(`${MASK}\na=1&t=${MASK}\n`), out)
    })

    it('HTML and XML escapes: Python html.escape (quote or not), xml.sax.saxutils quoteattr', async function () {
      if (!has('python3', '-c', 'pass')) this.skip()
      const script = `python3 -c 'import html, os; from xml.sax.saxutils import quoteattr; t = os.environ["T"]; print("<p>" + html.escape(t) + "</p>"); print(html.escape(t, quote=False)); print("<a title=" + quoteattr(t) + ">")'`
      const out = await maskedLines(script, 3)
      assert.ok(out.startsWith(`<p>${MASK}</p>\n`), out)
    })

    it('shell quoting: bash set -x, printf %q, @Q expansion; Python shlex.quote and repr; Perl Data::Dumper', async function () {
      if (!has('bash', '-c', ':') || !has('python3', '-c', 'pass') || !has('perl', '-e', '1')) this.skip()
      // CI logs' classic: `set -x` prints each command with its arguments quoted for the shell.
      const quoted = await runCli(['secrets', 'set', 'QUOTED'], {env: t.env, input: QUOTED})
      assert.equal(quoted.code, 0, quoted.stderr)
      const result = await run([
        '--env',
        'Q=local://QUOTED',
        '--',
        'bash',
        '-c',
        [
          'set -x',
          ': curl -H "Authorization: Bearer $Q"',
          'set +x',
          'printf "%q\\n" "$Q"',
          // eslint-disable-next-line no-template-curly-in-string -- bash's own expansion, not a template
          'echo "${Q@Q}"',
          `python3 -c 'import os, shlex; print(shlex.quote(os.environ["Q"])); print(repr(os.environ["Q"]))'`,
          `perl -MData::Dumper -e '$Data::Dumper::Terse = 1; print Dumper($ENV{Q})'`,
        ].join('\n'),
      ])
      assert.equal(result.code, 0, result.stderr)
      for (const output of [result.stdout, result.stderr])
        // Every quoted form keeps these words whole: none may be left.
        for (const word of ['canary', '9f21']) assert.ok(!output.includes(word), `${word} in ${output}`)
      assert.equal(result.stdout.split(MASK).length - 1, 5, result.stdout)
      assert.match(result.stderr, /^\+ : curl -H 'Authorization: Bearer <concealed by agentvault>'$/m)
    })

    it("YAML and SQL single-quoted literals ('' for a quote): SQLite quote(), PyYAML when installed", async function () {
      if (!has('python3', '-c', 'import sqlite3')) this.skip()
      const quoted = await runCli(['secrets', 'set', 'QUOTED'], {env: t.env, input: QUOTED})
      assert.equal(quoted.code, 0, quoted.stderr)
      const script = `import os, sqlite3
v = os.environ["Q"]
print(sqlite3.connect(":memory:").execute("select quote(?)", (v,)).fetchone()[0])
try:
    import yaml
    print(yaml.safe_dump({"q": v}), end="")
except ImportError:
    print("q: " + "'" + v.replace("'", "''") + "'")
`
      const result = await run(['--env', 'Q=local://QUOTED', '--', 'python3', '-c', script])
      assert.equal(result.code, 0, result.stderr)
      assert.ok(!result.stdout.includes('canary'), result.stdout)
      assert.equal(result.stdout.split(MASK).length - 1, 2, result.stdout)
    })

    it('a value stored with a trailing newline is masked when printed without it', async () => {
      const file = join(t.home, 'with-newline.txt')
      // Two newlines: whether or not storing strips one, the value kept still ends with a newline.
      await writeFile(file, 'canary-from-file-3e9d\n\n')
      const stored = await runCli(['secrets', 'set', 'FROMFILE', '--from-file', file], {env: t.env})
      assert.equal(stored.code, 0, stored.stderr)
      const result = await run([
        '--env',
        'F=local://FROMFILE',
        '--',
        'sh',
        '-c',
        'printf "[%s]\\n" "$(printf %s "$F" | tr -d "\\n")"',
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, `[${MASK}]\n`)
    })

    it('a PEM key printed line by line (each line of 8 bytes or more)', async () => {
      const body = Buffer.from(Array.from({length: 200}, (_, i) => (i * 37) % 256)).toString('base64')
      const lines = body.match(/.{1,64}/g)!
      const pem = `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`
      const file = join(t.home, 'key.pem')
      await writeFile(file, pem)
      const stored = await runCli(['secrets', 'set', 'PEM', '--from-file', file], {env: t.env})
      assert.equal(stored.code, 0, stored.stderr)
      const result = await run([
        '--env',
        'K=local://PEM',
        '--',
        'sh',
        '-c',
        'printf "%s\\n" "$K" | while IFS= read -r line; do echo "key: $line"; done',
      ])
      assert.equal(result.code, 0, result.stderr)
      for (const line of lines) assert.ok(!result.stdout.includes(line), result.stdout)
      assert.ok(result.stdout.split('\n').filter((line) => line === `key: ${MASK}`).length >= lines.length)
    })
  })

  it('random values: their encodings, written in random chunks through run, never survive (property)', async () => {
    const tricky = fc.constantFrom(...'"\\/<>&\' +%()*!~=?#é€😀\u2028\tAz09-_.'.match(/./gsu)!)
    const value = fc
      .array(tricky, {minLength: 4, maxLength: 20})
      .map((chars) => chars.join(''))
      .filter((text) => !/^\s|\s$/.test(text))
    await fc.assert(
      fc.asyncProperty(
        value,
        fc.array(fc.integer({max: 9, min: 1}), {maxLength: 12, minLength: 1}),
        async (text, sizes) => {
          const stored = await runCli(['secrets', 'set', 'RANDOM'], {env: t.env, input: text})
          assert.equal(stored.code, 0, stored.stderr)
          const bytes = Buffer.from(text)
          const pythonJson = JSON.stringify(text)
            .slice(1, -1)
            // Per UTF-16 unit (no u flag): astral characters become surrogate pairs, as in Python.
            // eslint-disable-next-line unicorn/prefer-code-point
            .replaceAll(/[^\u0000-\u007F]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
          const encodings = [
            text,
            bytes.toString('base64'),
            Buffer.from(`${text}\n`).toString('base64'),
            encodeURIComponent(text),
            encodeURIComponent(text).replaceAll(/%[\dA-F]{2}/g, (hex) => hex.toLowerCase()),
            new URLSearchParams([['', text]]).toString().slice(1),
            JSON.stringify(text).slice(1, -1),
            pythonJson,
          ]
          // The child writes each encoding on a line of its own, in chunks of the given sizes.
          const child = `const lines = JSON.parse(process.env.LINES).join('\\n') + '\\n'; const sizes = JSON.parse(process.env.SIZES); let at = 0; for (let i = 0; at < lines.length; i++) { const n = sizes[i % sizes.length]; require('fs').writeSync(1, lines.slice(at, at + n)); at += n }`
          const result = await run(['--env', 'R=local://RANDOM', '--', process.execPath, '-e', child], {
            LINES: JSON.stringify(encodings),
            SIZES: JSON.stringify(sizes),
          })
          assert.equal(result.code, 0, result.stderr)
          for (const encoded of encodings)
            assert.ok(!result.stdout.includes(encoded), `${encoded} in ${result.stdout}`)
        },
      ),
      {numRuns: 6},
    )
  })

  it('masks through its own socket only when some value is long enough to mask', function () {
    if (!has('readlink', '/proc/self/fd/1')) this.skip()
    // stdout is a file: the child writes to it directly when nothing is masked, else to our socket.
    const script = 'link=$(readlink /proc/$$/fd/1); echo "$link" >&2; printf "%s" "$S"'
    const runTo = (file: string, ...args: string[]) => {
      const fd = openSync(file, 'w')
      try {
        const result = spawnSync(
          process.execPath,
          [BIN, 'run', '--mask', 'always', ...args, '--', 'sh', '-c', script],
          {
            env: baseEnv(t.env),
            stdio: ['ignore', fd, 'pipe'],
          },
        )
        return {code: result.status, stderr: result.stderr.toString(), stdout: readFileSync(file, 'utf8')}
      } finally {
        closeSync(fd)
      }
    }

    const shortFile = join(t.home, 'short.out')
    const short = runTo(shortFile, '--env', 'S=local://SHORT')
    assert.equal(short.code, 0, short.stderr)
    assert.equal(short.stdout, SHORT, 'a value under 4 bytes is not masked')
    assert.ok(short.stderr.includes(`${shortFile}\n`), short.stderr)
    assert.match(short.stderr, /shorter than 4 bytes/)
    const both = runTo(join(t.home, 'both.out'), '--env', 'S=local://SHORT', '--env', `P=local://PLAIN`)
    assert.equal(both.code, 0, both.stderr)
    assert.match(both.stderr, /^socket:/m, both.stderr)
    assert.equal(both.stdout, SHORT)
  })

  describe('held-back bytes are written after a short idle time', () => {
    it('a line with a secret, then silence: arrives concealed and complete before the command goes on', async () => {
      const running = startRun(
        ['--env', 'K=local://PLAIN', '--', 'sh', '-c', 'echo "out $K"; sleep 20; echo end'],
        t.env,
      )
      try {
        const out = await outputIncludes(running.child, running.seen, `out ${MASK}\n`)
        assert.equal(out, `out ${MASK}\n`)
      } finally {
        running.stop()
      }
    })

    it('a prompt that ends with the start of a secret is written without waiting for more output', async () => {
      const running = startRun(
        ['--env', 'K=local://PROMPT', '--', 'sh', '-c', "printf 'Enter code: hun'; sleep 20; echo end"],
        t.env,
      )
      try {
        const out = await outputIncludes(running.child, running.seen, 'Enter code: hun')
        assert.equal(out, 'Enter code: hun')
      } finally {
        running.stop()
      }
    })

    it('also through an ordinary pipe (no socket in the temp dir)', async () => {
      const running = startRun(
        ['--env', 'K=local://PROMPT', '--', 'sh', '-c', "printf 'code: hun'; sleep 20; echo end"],
        {
          ...t.env,
          TMPDIR: join(t.home, 'no-such-dir'),
        },
      )
      try {
        assert.equal(await outputIncludes(running.child, running.seen, 'code: hun'), 'code: hun')
      } finally {
        running.stop()
      }
    })

    it(`run --help states the idle time (${IDLE_FLUSH_MS} ms) and what masking covers`, async () => {
      const help = await runCli(['run', '--help'], {env: t.env})
      assert.equal(help.code, 0, help.stderr)
      const text = help.stdout.replaceAll(/\s+/g, ' ')
      assert.ok(text.includes(`written after ${IDLE_FLUSH_MS} ms without new output`), help.stdout)
      for (const phrase of ['base64', 'JSON escapes', 'each line of 8 bytes or more', 'shorter than 4 bytes'])
        assert.ok(text.includes(phrase), phrase)
    })

    it('on stderr too', async () => {
      const running = startRun(
        ['--env', 'K=local://PROMPT', '--', 'sh', '-c', "printf 'err: hunt' >&2; sleep 20; echo end"],
        t.env,
      )
      let seen = ''
      try {
        await new Promise<void>((resolve, reject) => {
          running.child.stderr?.on('data', (chunk: Buffer) => {
            seen += chunk.toString('utf8')
            if (seen.includes('err: hunt')) resolve()
          })
          running.child.once('close', () => reject(new Error(`run ended first; stderr: ${seen}`)))
        })
        assert.equal(seen, 'err: hunt')
      } finally {
        running.stop()
      }
    })

    it('at the end everything is flushed, on both streams', async () => {
      const result = await run([
        '--env',
        'K=local://PROMPT',
        '--',
        'sh',
        '-c',
        "printf 'tail: hunter' >&2; printf 'out: hun'",
      ])
      assert.equal(result.code, 0)
      assert.equal(result.stdout, 'out: hun')
      assert.equal(result.stderr, 'tail: hunter')
    })
  })
})
