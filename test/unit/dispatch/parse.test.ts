/**
 * The dispatcher's parser against oclif's, on the definitions of every real command: for any
 * command line, either the dispatcher hands it to oclif (NeedsOclif), or oclif accepts it too and
 * both give the same arguments and flags. Hostile input included: flags glued to values, `=`, `--`,
 * `-`, negative numbers, repeated and unknown flags, prototype names, env vars set or empty.
 */
import {Flags, Parser} from '@oclif/core'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {
  type ArgDefinition,
  type FlagDefinition,
  NeedsOclif,
  parseCommandLine,
} from '../../../src/dispatch/parse.js'

interface CommandClass {
  args?: Record<string, ArgDefinition>
  baseFlags?: Record<string, FlagDefinition>
  enableJsonFlag?: boolean
  flags?: Record<string, FlagDefinition>
  strict?: boolean
}

const commandsDir = fileURLToPath(new URL('../../../src/commands', import.meta.url))
const files = (readdirSync(commandsDir, {recursive: true}) as string[]).filter((file) => file.endsWith('.ts'))

function definitions(command: CommandClass) {
  const json = Flags.boolean({
    description: 'Format output as json.',
    helpGroup: 'GLOBAL',
  }) as unknown as FlagDefinition
  return {
    args: command.args ?? {},
    flags: {...(command.enableJsonFlag ? {json} : {}), ...command.baseFlags, ...command.flags},
    strict: command.strict !== false,
  }
}

/** Words a user (or an attacker) might type for this command. */
function words(defs: ReturnType<typeof definitions>): fc.Arbitrary<string> {
  const spellings = Object.entries(defs.flags).flatMap(([name, flag]) => [
    `--${name}`,
    ...(flag.char ? [`-${flag.char}`] : []),
    ...(flag.aliases ?? []).map((alias) => `--${alias}`),
    ...(flag.type === 'boolean' ? [`--no-${name}`] : [`--${name}=`]),
  ])
  const values = Object.values(defs.flags).flatMap((flag) => [...(flag.options ?? [])])
  return fc.oneof(
    {arbitrary: fc.constantFrom(...spellings), weight: 5},
    {arbitrary: fc.constantFrom(...(values.length > 0 ? values : ['x'])), weight: 2},
    {
      arbitrary: fc.constantFrom(
        'K',
        'local://K',
        'a=b',
        '0',
        '1',
        '7',
        '-1',
        '-',
        '--',
        '--bogus',
        '-Z',
        '--constructor',
        '',
      ),
      weight: 3,
    },
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...spellings), fc.string({maxLength: 4}))
        .map(([flag, rest]) => flag + rest),
      weight: 1,
    },
    {arbitrary: fc.string({maxLength: 6}), weight: 2},
  )
}

/** The required arguments and flags, so that random words land on a line oclif may accept. */
function requiredWords(defs: ReturnType<typeof definitions>): string[] {
  const args = Object.values(defs.args).flatMap((arg) => (arg.required ? [arg.options?.[0] ?? '1'] : []))
  const flags = Object.entries(defs.flags).flatMap(([name, flag]) =>
    flag.required ? [`--${name}`, ...(flag.type === 'option' ? [flag.options?.[0] ?? '1'] : [])] : [],
  )
  return [...args, ...flags]
}

type Outcome = {args: unknown; argv: unknown; flags: unknown} | {error: string}

async function withEnv<T>(env: Record<string, string>, run: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]))
  Object.assign(process.env, env)
  try {
    return await run()
  } finally {
    for (const [key, value] of Object.entries(saved))
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
  }
}

describe('dispatch: the command-line parser matches oclif’s', () => {
  const stdinWasTty = process.stdin.isTTY
  // A missing argument makes both parsers look at stdin: as on a terminal, there is none.
  before(() => {
    process.stdin.isTTY = true
  })

  after(() => {
    process.stdin.isTTY = stdinWasTty
  })

  for (const file of files) {
    it(`src/commands/${file}`, async () => {
      const {default: command} = (await import(pathToFileURL(join(commandsDir, file)).href)) as {
        default: CommandClass
      }
      const envNames = Object.values(definitions(command).flags).flatMap((flag) =>
        flag.env ? [flag.env] : [],
      )
      let dispatched = 0
      await fc.assert(
        fc.asyncProperty(
          fc
            .tuple(fc.boolean(), fc.array(words(definitions(command)), {maxLength: 8}))
            .map(([valid, random]) => (valid ? [...requiredWords(definitions(command)), ...random] : random)),
          fc.dictionary(
            fc.constantFrom(...(envNames.length > 0 ? envNames : ['UNUSED_X'])),
            fc.constantFrom('', '1', 'no', 'x', '5'),
          ),
          async (argv, env) =>
            withEnv(env, async () => {
              const theirs: Outcome = await Parser.parse([...argv], {
                ...definitions(command),
                context: {},
              } as never).then(
                (out) => ({args: out.args, argv: out.argv, flags: out.flags}),
                (error: Error) => ({error: error.message}),
              )
              let ours: Outcome
              try {
                const out = await parseCommandLine([...argv], definitions(command), {})
                ours = {args: out.args, argv: out.argv, flags: out.flags}
              } catch (error) {
                assert.ok(error instanceof NeedsOclif, `not a hand-over: ${(error as Error).stack}`)
                return
              }

              dispatched++
              assert.deepEqual(ours, theirs, `argv ${JSON.stringify(argv)} env ${JSON.stringify(env)}`)
            }),
        ),
        {numRuns: 300},
      )
      assert.ok(dispatched > 0, 'the dispatcher handed every command line to oclif')
    })
  }

  it('reads what oclif reads for a missing argument: piped stdin, trimmed, once', async () => {
    const args = {
      first: {parse: async (input: string) => input} as ArgDefinition,
      second: {parse: async (input: string) => input} as ArgDefinition,
    }
    let reads = 0
    const parsed = await parseCommandLine([], {args, flags: {}, strict: true}, {}, async () => {
      reads++
      return '  piped value \n'
    })
    assert.deepEqual(parsed.args, {first: 'piped value'})
    assert.equal(reads, 1)
  })
})
