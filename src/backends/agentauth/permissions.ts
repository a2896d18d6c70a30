/**
 * AgentAuth permissions (protocols/agentauth.md §6): the syntax agentvault checks before sending
 * (`service:resource:action`, the catalogue is the server's call) and the built-in copy of the
 * catalogue shown when the server has no `/permissions/list` (v0.7).
 */
import {UsageError} from '../../core/errors.js'

const PERMISSION = /^[a-z0-9_*-]+:[a-z0-9_*-]+:[a-z0-9_*-]+$/

/** The catalogue of §6 (`VALID_PERMISSIONS` of the legacy server), 26 entries. */
export const BUILTIN_PERMISSIONS: readonly string[] = Object.freeze([
  'zendesk:tickets:read',
  'zendesk:tickets:write',
  'zendesk:users:read',
  'zendesk:users:write',
  'slack:messages:read',
  'slack:messages:write',
  'slack:channels:read',
  'slack:channels:write',
  'hubspot:contacts:read',
  'hubspot:contacts:write',
  'hubspot:deals:read',
  'hubspot:deals:write',
  'hubspot:companies:read',
  'github:repos:read',
  'github:repos:write',
  'github:issues:read',
  'github:issues:write',
  'github:pull_requests:read',
  'salesforce:accounts:read',
  'salesforce:accounts:write',
  'salesforce:leads:read',
  'salesforce:leads:write',
  'stripe:payments:read',
  'stripe:customers:read',
  'stripe:invoices:read',
  '*:*:*',
])

/**
 * Check permission strings before any request (§6): three non-empty parts of `[a-z0-9_*-]`.
 *
 * @throws UsageError BAD_PERMISSION naming the position of the first bad one.
 */
export function checkPermissions(permissions: readonly string[]): string[] {
  if (permissions.length > 50)
    throw new UsageError('BAD_PERMISSION', `At most 50 permissions per agent (got ${permissions.length})`, {
      suggestion: 'Give fewer --permission flags; `*:*:*` grants everything.',
    })
  for (const [index, permission] of permissions.entries()) {
    if (!PERMISSION.test(permission)) {
      const quoted = permission.length <= 64 && /^[\x20-\x7E]*$/.test(permission) ? ` "${permission}"` : ''
      throw new UsageError(
        'BAD_PERMISSION',
        `Permission ${index + 1}${quoted} is not service:resource:action`,
        {
          suggestion:
            'Write permissions like github:repos:read (lower-case letters, digits, _ - and *); `agentvault agents permissions` lists them.',
        },
      )
    }
  }

  return [...permissions]
}
