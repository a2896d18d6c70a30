/**
 * The tools of `agentvault mcp`: their input schemas (zod, sent to clients as JSON Schema) and the
 * descriptions a model reads to decide how to call them. No tool ever returns a secret value.
 */
import * as z from 'zod/v4'

/** The largest tool arguments accepted, as JSON (1 MiB): larger ones are a protocol error. */
export const MAX_ARGUMENTS_BYTES = 1024 * 1024
/** run_command keeps at most this much of each of stdout and stderr (the end of it). */
export const MAX_OUTPUT_BYTES = 64 * 1024
export const DEFAULT_RUN_TIMEOUT_SECONDS = 120
export const MAX_RUN_TIMEOUT_SECONDS = 3600

/** What use_secret performs: never `http_header`, whose result is a credential. */
export const USE_SECRET_OPERATIONS = ['sign', 'verify', 'encrypt', 'decrypt', 'http_request'] as const

const reference = z
  .string()
  .min(1)
  .max(1024)
  .describe(
    'A secret reference such as local://OPENAI_KEY, openbao+kv2://secret/app#token or sanctum://openai/api_key (as list_secrets returns them), or a bare name of the default profile.',
  )
const referenceMap = (what: string) =>
  z
    .record(z.string().min(1).max(256), reference)
    .describe(`${what}: an object mapping each name to a secret reference.`)

export const listSecretsInput = z
  .object({
    prefix: z
      .string()
      .max(1024)
      .optional()
      .describe('Only secrets whose name or reference starts with this text.'),
  })
  .strict()

export const httpRequestInput = z
  .object({
    url: z.string().min(1).max(8192).describe('The http:// or https:// URL to call.'),
    method: z.string().max(32).optional().describe('HTTP method; default GET, or POST when there is a body.'),
    headers: z
      .record(z.string().min(1).max(256), z.string().max(8192))
      .optional()
      .describe('Plain (non-secret) request headers, name → value.'),
    body: z.string().max(MAX_ARGUMENTS_BYTES).optional().describe('Request body as text (JSON or form).'),
    bearer: reference.optional().describe('Send Authorization: Bearer <this secret>.'),
    basic: reference
      .optional()
      .describe('Send Authorization: Basic with this secret, which holds user:password.'),
    header: referenceMap('Headers whose value is a secret').optional(),
    query: referenceMap('Query parameters whose value is a secret').optional(),
    body_field: referenceMap(
      'Fields of the JSON body (dotted paths such as auth.token) set to a secret',
    ).optional(),
    form_field: referenceMap('Fields of the form-encoded body set to a secret').optional(),
  })
  .strict()

export const useSecretInput = z
  .object({
    reference,
    operation: z.enum(USE_SECRET_OPERATIONS).describe('What to do with the secret.'),
    params: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        'Parameters of the operation: sign {data, algorithm: hmac-sha256|hmac-sha512|ed25519, encoding: utf8|base64|hex}; verify {data, signature, algorithm, encoding}; encrypt {plaintext, encoding}; decrypt {ciphertext}; http_request {url, method, headers, body, header_type: bearer|api_key|basic|custom, header_name}.',
      ),
  })
  .strict()

export const runCommandInput = z
  .object({
    command: z
      .array(z.string().max(65_536))
      .min(1)
      .max(4096)
      .describe(
        'The program and its arguments, e.g. ["npm", "test"]. No shell is involved unless you ask for one: ["sh", "-c", "…"].',
      ),
    env: referenceMap('Environment variables for the command whose value is a secret').optional(),
    cwd: z.string().min(1).max(4096).optional().describe("Working directory (default: the server's)."),
    timeout_seconds: z
      .number()
      .int()
      .min(1)
      .max(MAX_RUN_TIMEOUT_SECONDS)
      .optional()
      .describe(`Kill the command after this many seconds (default ${DEFAULT_RUN_TIMEOUT_SECONDS}).`),
  })
  .strict()

export type ListSecretsInput = z.infer<typeof listSecretsInput>
export type HttpRequestInput = z.infer<typeof httpRequestInput>
export type UseSecretInput = z.infer<typeof useSecretInput>
export type RunCommandInput = z.infer<typeof runCommandInput>

export interface ToolSpec {
  description: string
  input: z.ZodType
  name: 'http_request' | 'list_secrets' | 'run_command' | 'use_secret'
  readOnly: boolean
  title: string
}

const NEVER =
  'You never see a secret value: agentvault injects or uses it for you and conceals any echo of it.'

export const TOOLS: readonly ToolSpec[] = [
  {
    description: `List the secrets this server may use: their references (pass them to the other tools), names and metadata such as type, description, tags and allowed domains. ${NEVER} openbao secrets are listed as paths: add #FIELD to name a field.`,
    input: listSecretsInput,
    name: 'list_secrets',
    readOnly: true,
    title: 'List usable secrets',
  },
  {
    description: `Make an HTTP request with secrets injected: as a bearer token, Basic credentials, headers, query parameters, JSON body fields or form fields. Returns status, headers, body (as text, or base64 with bodyEncoding), redacted (true when an echo of a secret was concealed) and duration_ms. A secret is sent only to hosts it is allowed to reach. ${NEVER}`,
    input: httpRequestInput,
    name: 'http_request',
    readOnly: false,
    title: 'HTTP request with secrets',
  },
  {
    description: `Use one secret without seeing it: sign or verify data with it (HMAC-SHA256/512, Ed25519), encrypt or decrypt with a key derived from it, or send an HTTP request authenticated with it. Returns only the result (signature, validity, ciphertext, plaintext, or the HTTP response). ${NEVER}`,
    input: useSecretInput,
    name: 'use_secret',
    readOnly: false,
    title: 'Use a secret',
  },
  {
    description: `Run a command with secrets in its environment (env maps variable names to secret references). Returns exit_code (or signal), timed_out, and stdout/stderr with every secret value concealed; each keeps only its last ${MAX_OUTPUT_BYTES / 1024} KiB (stdout_truncated_bytes/stderr_truncated_bytes say how much was dropped). The command gets no stdin and a minimal environment (PATH, HOME, locale, terminal) plus the secrets. ${NEVER}`,
    input: runCommandInput,
    name: 'run_command',
    readOnly: false,
    title: 'Run a command with secrets',
  },
]
