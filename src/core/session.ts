/**
 * One command's view of the world: home, config (loaded once), one backend instance per profile,
 * and the audit record the command accumulates. Shared by the oclif base command and the fast
 * `run` path so both behave the same.
 */
import type {AuditEvent} from './audit.js'
import type {Backend, BackendKind} from './backend.js'

import {
  type AgentVaultConfig,
  agentvaultHome,
  assertHomeIsDirectory,
  homePermissionWarning,
  loadConfig,
  type Profile,
  resolveProfile,
} from './config.js'
import {AgentVaultError, UsageError} from './errors.js'
import {
  checkMountAllowed,
  looksLikeCredential,
  parseReference,
  resourceRef,
  type SecretReference,
} from './references.js'

export interface SessionOptions {
  /** The command id as the user typed it, e.g. `secrets get`. */
  command: string
  env: NodeJS.ProcessEnv
  interactive: boolean
  /** `--profile` or `AGENTVAULT_PROFILE`. */
  profileName?: string
  /** The command layer's hidden prompt, when `interactive` (backends get it in their context). */
  promptHidden?(message: string): Promise<Buffer>
  warn(message: string): void
}

/** What a command tells the audit log; the session adds time, outcome and duration. */
export interface AuditDraft {
  /** Who asked, in their own words (the proxy's `X-AS-Agent-ID`). */
  agentId?: string
  /** The client of a long-running server (`mcp`), as `name/version`. */
  client?: string
  operation?: string
  references: Set<string>
  status?: number
  targetHost?: string
  /** The tool of an `mcp` request. */
  tool?: string
  /** Set once the command touched a secret: only then is a record written. */
  touched: boolean
}

/** Inputs whose parsed reference a session keeps (see `targets`). */
const MAX_PARSED_TARGETS = 256

export class Session {
  readonly audit: AuditDraft = {references: new Set(), touched: false}
  readonly home: string
  private readonly backends: Map<string, Promise<Backend>> = new Map()
  private configPromise?: Promise<AgentVaultConfig>
  /** False for a request session: its backends belong to the session it was made from. */
  private readonly ownsBackends: boolean = true
  private readonly profilesUsed = new Map<string, Profile>()
  private readonly started = Date.now()
  /**
   * What parseTarget made of each input, shared with the request sessions made from this one (they
   * resolve names in the same profile): a long-lived `proxy` or `mcp` parses the same few names on
   * every request. Bounded: a client naming ever new secrets cannot grow it.
   */
  private readonly targets: Map<string, SecretReference> = new Map()

  constructor(
    readonly options: SessionOptions,
    parent?: Session,
  ) {
    this.home = parent ? parent.home : agentvaultHome(options.env)
    if (parent) {
      this.backends = parent.backends
      this.targets = parent.targets
      this.configPromise = parent.config()
      this.ownsBackends = false
    }
  }

  /**
   * A session for one unit of work inside a long-lived command (one `proxy` request or `mcp` tool
   * call): its own audit record and start time, this session's config and backend instances (one
   * per profile, reused). Closing it is a no-op: the parent owns and closes the backends.
   */
  derive(command = this.options.command): Session {
    return new Session({...this.options, command}, this)
  }

  /** Release every backend (leases, sockets); errors while closing are reported as warnings. */
  async close(): Promise<void> {
    if (!this.ownsBackends) return
    const backends = [...this.backends.values()]
    this.backends.clear()
    await Promise.all(
      backends.map(async (pending) => {
        try {
          await (await pending).close()
        } catch (error) {
          if (error instanceof AgentVaultError) this.options.warn(error.message)
        }
      }),
    )
  }

  config(): Promise<AgentVaultConfig> {
    if (!this.configPromise) {
      try {
        assertHomeIsDirectory(this.home)
      } catch (error) {
        this.configPromise = Promise.reject(error)
        return this.configPromise
      }

      const warning = homePermissionWarning(this.home)
      if (warning) this.options.warn(warning)
      this.configPromise = loadConfig(this.home)
    }

    return this.configPromise
  }

  /** The backend instance for a profile: one per profile per command. */
  async backendFor(profile: Profile): Promise<Backend> {
    let pending = this.backends.get(profile.name)
    if (!pending) {
      pending = import('./registry.js').then(({loadBackend}) =>
        loadBackend({
          env: this.options.env,
          home: this.home,
          interactive: this.options.interactive,
          profile,
          ...(this.options.promptHidden && {promptHidden: this.options.promptHidden}),
          warn: this.options.warn,
        }),
      )
      this.backends.set(profile.name, pending)
    }

    return pending
  }

  /** Append the command's audit record if it touched a secret. Never throws. */
  async finish(outcome: AuditEvent['outcome'], exitCode: number, errorCode?: string): Promise<void> {
    const event = this.auditEvent(outcome, exitCode, errorCode)
    if (!event) return
    try {
      const {appendAudit} = await import('./audit.js')
      await appendAudit(this.home, event)
    } catch (error) {
      this.options.warn(
        `Could not write the audit log: ${error instanceof Error ? error.message : String(error)}`,
      )
    }
  }

  /**
   * The audit event `finish` would append, or undefined when no secret was touched (for a
   * caller that appends many at once: `proxy`).
   */
  auditEvent(outcome: AuditEvent['outcome'], exitCode: number, errorCode?: string): AuditEvent | undefined {
    if (!this.audit.touched) return undefined
    const event: AuditEvent = {
      time: new Date(this.started).toISOString(),
      command: this.options.command,
      outcome,
      exit_code: exitCode,
      duration_ms: Date.now() - this.started,
    }
    // Assigned in this order (the line's key order), without a spread object per field: `proxy`
    // builds one event per request.
    if (this.profilesUsed.size > 0) {
      const profiles = [...this.profilesUsed.values()]
      event.profile = profiles.map((p) => p.name).join(',')
      event.backend = [...new Set(profiles.map((p) => p.kind))].join(',')
    }

    const {agentId, client, operation, references, status, targetHost, tool} = this.audit
    if (operation) event.operation = operation
    if (targetHost) event.target_host = targetHost
    if (status !== undefined) event.status = status
    if (errorCode) event.error_code = errorCode
    if (tool) event.tool = tool
    if (client) event.client = client
    if (agentId) event.agent_id = agentId
    if (references.size > 0) {
      const plain: string[] = []
      const hashed: string[] = []
      for (const name of references) {
        if (name.startsWith('ref:')) hashed.push(name.slice(4))
        else plain.push(name)
      }

      if (plain.length > 0) event.references = plain
      if (hashed.length > 0) event.resource_refs = hashed
    }

    return event
  }

  /** Parse a reference, or a bare NAME meaning a secret of the active profile's backend. */
  async parseTarget(input: string): Promise<SecretReference> {
    const known = this.targets.get(input)
    if (known) return known
    const ref = Object.freeze(await this.parseNewTarget(input))
    if (this.targets.size < MAX_PARSED_TARGETS) this.targets.set(input, ref)
    return ref
  }

  private async parseNewTarget(input: string): Promise<SecretReference> {
    if (input.includes('://')) return parseReference(input)
    if (looksLikeCredential(input))
      throw new UsageError(
        'VALUE_NOT_REFERENCE',
        'A secret value (a token) was given where a secret’s name or reference belongs; it was not used (not shown)',
        {
          suggestion:
            'Store it first (printf %s "$TOKEN" | agentvault secrets set NAME), then pass its name or reference (NAME, local://NAME).',
        },
      )
    const profile = await this.profileFor()
    if (profile.kind === 'openbao' || profile.kind === 'agentauth')
      throw new UsageError('REFERENCE_REQUIRED', `"${input}" is not a reference`, {
        suggestion: `Write a full reference, e.g. ${profile.kind === 'openbao' ? `openbao://${input}${input.includes('#') ? '' : '#field'}` : 'agentauth://access-token'}.`,
      })
    // `secret/app#field`, as `vault kv get -field` users think of it: only openbao has fields.
    if (input.includes('#'))
      throw new UsageError(
        'REFERENCE_REQUIRED',
        `"${input}" names a #field, which only openbao references have`,
        {
          suggestion: `Write the full reference, openbao://${input} (or vault://…), or a ${profile.kind} name without #.`,
        },
      )
    const ref = parseReference(`${profile.kind}://${input}`)
    return profile.implicit ? ref : parseReference(`${ref.canonical}?profile=${profile.name}`)
  }

  /**
   * The profile for a reference of `kind` (`?profile=` wins, then `--profile` when it is of that
   * kind, then the kind's default), or, with no kind, the profile a kind-less command works on.
   */
  async profileFor(kind?: BackendKind, explicit?: string): Promise<Profile> {
    const config = await this.config()
    if (explicit) return resolveProfile(config, {kind, name: explicit})
    const {profileName} = this.options
    if (profileName) {
      const chosen = resolveProfile(config, {name: profileName})
      if (!kind || chosen.kind === kind) return chosen
    }

    return resolveProfile(config, {kind})
  }

  /** Record that the command touches this reference (by name, or by resource_ref when asked). */
  async noteReference(ref: SecretReference, profile: Profile): Promise<void> {
    this.audit.touched = true
    this.profilesUsed.set(profile.name, profile)
    if (profile.settings.auditPaths === 'ref') {
      const {auditSalt} = await import('./audit.js')
      this.audit.references.add(`ref:${resourceRef(await auditSalt(this.home), ref.canonical)}`)
    } else {
      this.audit.references.add(ref.canonical)
    }
  }

  /** Note a command that touches a profile's secrets without naming one (e.g. `secrets list`). */
  noteProfile(profile: Profile): void {
    this.audit.touched = true
    this.profilesUsed.set(profile.name, profile)
  }

  /** The profile and backend serving a reference, after recording it for the audit log. */
  async open(ref: SecretReference): Promise<{backend: Backend; profile: Profile}> {
    const profile = await this.profileFor(ref.kind, ref.profile)
    await this.noteReference(ref, profile)
    if (ref.kind === 'openbao') {
      const mounts = profile.settings.allowedMounts
      checkMountAllowed(ref, Array.isArray(mounts) ? (mounts as string[]) : undefined)
    }

    return {backend: await this.backendFor(profile), profile}
  }
}
