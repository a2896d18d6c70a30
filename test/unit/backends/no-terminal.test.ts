/**
 * Backends never touch the terminal (architecture.md): they declare their login inputs and
 * settings, and the command layer reads flags, stdin and prompts. This scans every source file
 * under src/backends for a way to the terminal: an import of src/ui (static or lazy), of the
 * prompt library, or process.stdin/stdout/stderr.
 */
import assert from 'node:assert/strict'
import {readdir, readFile} from 'node:fs/promises'
import {join, relative, resolve} from 'node:path'

import {ROOT} from '../../helpers/cli.js'

const BACKENDS = join(ROOT, 'src', 'backends')

async function sources(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...(await sources(path)))
    else if (entry.name.endsWith('.ts')) found.push(path)
  }

  return found
}

/** Every module specifier a file imports: `from '…'`, `import('…')`, `import '…'`, `require('…')`. */
function importsOf(text: string): string[] {
  const pattern =
    /\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\bimport\s+['"]([^'"]+)['"]|\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g
  return [...text.matchAll(pattern)].map((match) => match[1] ?? match[2] ?? match[3] ?? match[4] ?? '')
}

describe('backends never touch the terminal', () => {
  it('the import scanner sees static, lazy and side-effect imports', () => {
    assert.deepEqual(
      importsOf(
        "import {a} from '../../ui/input.js'\nconst x = await import('../../ui/table.js')\nimport '../../ui/x.js'\nimport type {B} from \"./b.js\"",
      ),
      ['../../ui/input.js', '../../ui/table.js', '../../ui/x.js', './b.js'],
    )
  })

  it('no file under src/backends imports src/ui or a prompt library, or uses process.stdin/stdout/stderr', async () => {
    const files = await sources(BACKENDS)
    assert.ok(files.length > 40, `${files.length} backend files found`)
    const offences: string[] = []
    for (const file of files) {
      const text = await readFile(file, 'utf8')
      const name = relative(ROOT, file)
      for (const specifier of importsOf(text)) {
        const target = specifier.startsWith('.') ? relative(ROOT, resolve(file, '..', specifier)) : specifier
        if (target.startsWith(join('src', 'ui')) || /^@inquirer\//.test(target) || target === 'readline')
          offences.push(`${name} imports ${specifier}`)
      }

      for (const match of text.matchAll(/\bprocess\.(stdin|stdout|stderr)\b/g))
        offences.push(`${name} uses process.${match[1]}`)
    }

    assert.deepEqual(offences, [])
  })

  it('each backend has a declaration.ts of data only (no import but types)', async () => {
    for (const kind of ['local', 'sanctum', 'openbao', 'agentsecrets', 'agentauth']) {
      const text = await readFile(join(BACKENDS, kind, 'declaration.ts'), 'utf8')
      const imports = [...text.matchAll(/^import\s+(type\s+)?.*$/gm)]
      assert.ok(imports.length > 0, kind)
      for (const line of imports) assert.ok(line[1], `${kind}/declaration.ts: ${line[0]}`)
      assert.match(text, /export const LOGIN\b/)
      assert.match(text, /export const SETTINGS\b/)
    }
  })
})
