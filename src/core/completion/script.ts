/**
 * The bash and zsh completion scripts, rendered from the completion spec (spec.ts).
 *
 * Both scripts share one analysis, written in the subset of shell that bash and zsh read alike: it
 * walks the words typed so far (command path, flags and their values, positional arguments, `--`)
 * and says what the word under the cursor completes to. Each shell then offers it its own way
 * (bash: COMPREPLY; zsh: compadd, _files, _normal). Nothing runs agentvault or Node at TAB time:
 * profile and secret names come from the names cache in the agentvault home (names-cache.ts), which
 * never holds a value.
 */
import type {CommandSpec, CompletionSpec, ValueSpec} from './spec.js'

import {COMPLETION_DIR, PROFILES_FILE, SECRETS_FILE} from './names-cache.js'

/** A string as a shell `$'…'` literal, read the same by bash and zsh. */
function ansi(value: string): string {
  return `$'${value
    .replaceAll('\\', '\\\\')
    .replaceAll("'", "\\'")
    .replaceAll('\n', '\\n')
    .replaceAll('\t', '\\t')
    .replaceAll(/[\u0000-\u001F\u007F]/g, ' ')}'`
}

/** A case pattern matching `value` literally. */
function literal(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`
}

function lines(items: Array<{description?: string; word: string}>): string {
  return items.map(({description, word}) => (description ? `${word}\t${description}` : word)).join('\n')
}

/** `case` arms grouped by identical bodies (most flags share theirs), in a stable order. */
function caseArms(arms: Array<{body: string; pattern: string}>): string {
  const byBody = new Map<string, string[]>()
  for (const {body, pattern} of arms) byBody.set(body, [...(byBody.get(body) ?? []), literal(pattern)])
  return [...byBody].map(([body, patterns]) => `    ${patterns.join('|')}) ${body} ;;`).join('\n')
}

function valueBody(value: undefined | ValueSpec): string {
  if (!value) return '__av_vk=bool __av_out='
  return `__av_vk=${value.dynamic} __av_out=${ansi(value.words.join('\n'))}`
}

function commandArms(commands: CommandSpec[]): string {
  return caseArms(
    commands.map((command) => ({
      body: `__av_exec=${command.exec ? 1 : 0} __av_flags=${ansi(
        lines([
          ...command.flags.map((flag) => ({description: flag.description, word: `--${flag.long}`})),
          ...(command.exec ? [{description: 'Then the command to run and its arguments.', word: '--'}] : []),
        ]),
      )}`,
      pattern: command.path,
    })),
  )
}

function flagArms(commands: CommandSpec[]): string {
  return caseArms(
    commands.flatMap((command) =>
      command.flags.flatMap((flag) => {
        const body = valueBody(flag.value)
        return [
          {body, pattern: `${command.path} --${flag.long}`},
          ...(flag.char ? [{body, pattern: `${command.path} -${flag.char}`}] : []),
        ]
      }),
    ),
  )
}

function argArms(commands: CommandSpec[]): string {
  return caseArms(
    commands.flatMap((command) =>
      command.args.map((value, index) => ({body: valueBody(value), pattern: `${command.path} ${index + 1}`})),
    ),
  )
}

function treeArms(spec: CompletionSpec): string {
  return caseArms(
    [...spec.tree].map(([prefix, words]) => ({body: `__av_out=${ansi(lines(words))}`, pattern: prefix})),
  )
}

/** The functions both shells share: the command data and the analysis of the typed words. */
function sharedFunctions(spec: CompletionSpec): string {
  return `# The words that may follow a command path ('' is the top level): "word<TAB>description" lines.
__agentvault_sub() {
  case $1 in
${treeArms(spec)}
    *) __av_out= ; return 1 ;;
  esac
}

# Whether a command path is a command; sets its flags ("--flag<TAB>description" lines) and whether
# the words after \`--\` (or its first positional word) are a command line of their own.
__agentvault_cmd() {
  case $1 in
${commandArms(spec.commands)}
    *) __av_exec=0 __av_flags= ; return 1 ;;
  esac
}

# What the value of flag $2 of command $1 completes to: __av_vk (bool: takes none; unknown; or
# none|files|profiles|secrets|envvars besides) and __av_out (fixed words, one a line).
__agentvault_flag() {
  case "$1 $2" in
${flagArms(spec.commands)}
    *) __av_vk=unknown __av_out= ;;
  esac
}

# What positional argument $2 (from 1) of command $1 completes to (as __agentvault_flag).
__agentvault_arg() {
  case "$1 $2" in
${argArms(spec.commands)}
    *) __av_vk=none __av_out= ;;
  esac
}

# The words after the program name, the last one being the word under the cursor. Sets __av_out
# (fixed candidates, "word<TAB>description" lines), __av_vk (what else: none, files, profiles,
# secrets, envvars, commands, or execargs: the arguments of the command run after \`--\`),
# __av_prefix (typed before the value: "--flag=" or "local://"), __av_cur (the value typed so
# far) and __av_skip (how many words come before the command run after \`--\`).
__agentvault_analyse() {
  local av_path= av_args=0 av_index=0 av_pending= av_noflags= av_exec=0 av_word av_subs
  local av_nl=$'\\n' av_tab=$'\\t'
  __av_out= __av_vk=none __av_prefix= __av_cur= __av_skip=0
  while [ $# -gt 1 ]; do
    av_word=$1
    shift
    av_index=$((av_index + 1))
    [ $av_exec -gt 0 ] && continue
    if [ -n "$av_pending" ]; then
      av_pending=
      continue
    fi
    if [ -z "$av_noflags" ]; then
      case $av_word in
        --)
          if __agentvault_cmd "$av_path" && [ "$__av_exec" = 1 ]; then
            av_exec=$((av_index + 1))
          else
            av_noflags=1
          fi
          continue
          ;;
        --*=*) continue ;;
        -?*)
          __agentvault_flag "$av_path" "$av_word"
          case $__av_vk in
            bool | unknown) ;;
            *) av_pending=$av_word ;;
          esac
          continue
          ;;
      esac
    fi
    if [ $av_args -eq 0 ] && __agentvault_sub "$av_path"; then
      case "$av_nl$__av_out$av_nl" in
        *"$av_nl$av_word$av_tab"* | *"$av_nl$av_word$av_nl"*)
          av_path=\${av_path:+$av_path }$av_word
          continue
          ;;
      esac
    fi
    if [ $av_args -eq 0 ] && __agentvault_cmd "$av_path" && [ "$__av_exec" = 1 ]; then
      av_exec=$av_index
      continue
    fi
    av_args=$((av_args + 1))
  done
  __av_cur=$1
  __av_out=
  if [ $av_exec -gt 0 ]; then
    __av_skip=$((av_exec - 1))
    if [ $((av_index + 1)) -eq $av_exec ]; then __av_vk=commands; else __av_vk=execargs; fi
    return 0
  fi
  if [ -n "$av_pending" ]; then
    __agentvault_flag "$av_path" "$av_pending"
    return 0
  fi
  if [ -z "$av_noflags" ]; then
    case $__av_cur in
      --*=*)
        __av_prefix=\${__av_cur%%=*}=
        __agentvault_flag "$av_path" "\${__av_cur%%=*}"
        __av_cur=\${__av_cur#*=}
        case $__av_vk in bool | unknown) __av_vk=none __av_out= ;; esac
        return 0
        ;;
      -*)
        __av_vk=none
        __agentvault_cmd "$av_path" && __av_out=$__av_flags
        return 0
        ;;
    esac
  fi
  # The first word that is not a flag starts the command line of \`run\`, as \`run\` reads it.
  if [ $av_args -eq 0 ] && __agentvault_cmd "$av_path" && [ "$__av_exec" = 1 ]; then
    __av_vk=commands __av_out= __av_skip=$av_index
    return 0
  fi
  av_subs=
  if [ $av_args -eq 0 ] && __agentvault_sub "$av_path"; then av_subs=$__av_out; fi
  if __agentvault_cmd "$av_path"; then
    __agentvault_arg "$av_path" $((av_args + 1))
  else
    __av_vk=none __av_out=
  fi
  if [ -n "$av_subs" ]; then
    # Subcommands first; an argument value that is also a subcommand (\`login local\`) once.
    local av_line av_extra=
    while IFS= read -r av_line; do
      [ -z "$av_line" ] && continue
      case "$av_nl$av_subs$av_nl" in
        *"$av_nl$av_line$av_tab"* | *"$av_nl$av_line$av_nl"*) ;;
        *) av_extra=$av_extra$av_nl$av_line ;;
      esac
    done <<<"$__av_out"
    __av_out=$av_subs$av_extra
  fi
  if [ "$__av_vk" = secrets ]; then
    case $__av_cur in
      local://*)
        __av_prefix=local://
        __av_cur=\${__av_cur#local://}
        ;;
    esac
  fi
  return 0
}
`
}

const HEADER = `# agentvault shell completion, generated by \`agentvault autocomplete\` from its commands.
# Profile and secret names come from $AGENTVAULT_HOME/${COMPLETION_DIR}/ (names only, never values).`

/** The bash completion script: source it (the setup line `agentvault autocomplete` prints does). */
export function bashScript(spec: CompletionSpec, bin = 'agentvault'): string {
  return `${HEADER}

${sharedFunctions(spec)}
# Offer $1 (in full, as the word under the cursor would read) when it extends that word, trimmed to
# the part readline replaces (after the last = or : bash splits words at).
__agentvault_reply() {
  case $1 in
    "$__av_full"*) ;;
    *) return 0 ;;
  esac
  COMPREPLY+=("\${1#"$__av_strip"}")
}

# Each line of a names file that extends the word, as a reply (shell-quoted when it needs it).
__agentvault_names() {
  local av_name av_reply
  local -a av_list
  [ -r "$1" ] || return 0
  mapfile -t av_list <"$1"
  # Inline (no call per name): a vault may hold hundreds.
  for av_name in "\${av_list[@]}"; do
    case $__av_prefix$av_name in
      "$__av_full"*) ;;
      *) continue ;;
    esac
    av_reply=$__av_prefix$av_name
    av_reply=\${av_reply#"$__av_strip"}
    case $av_reply in
      '') continue ;;
      *[!A-Za-z0-9._/:@%+=,-]*) printf -v av_reply '%q' "$av_reply" ;;
    esac
    COMPREPLY+=("$av_reply")
  done
}

_${bin}() {
  COMPREPLY=()
  local -a av_words=()
  local av_i av_w av_rest av_trimmed av_raw av_line av_home=\${AGENTVAULT_HOME:-$HOME/.agentvault}
  # Put back together the words bash split at = and : (COMP_WORDBREAKS): no blank between them.
  av_rest=\${COMP_LINE:0:\${COMP_POINT:-\${#COMP_LINE}}}
  for ((av_i = 0; av_i <= COMP_CWORD; av_i++)); do
    av_w=\${COMP_WORDS[av_i]}
    av_trimmed=\${av_rest#"\${av_rest%%[![:space:]]*}"}
    if [ $av_i -gt 0 ] && [ -n "$COMP_LINE" ] && [ "$av_trimmed" = "$av_rest" ] && [ \${#av_words[@]} -gt 1 ]; then
      av_words[\${#av_words[@]} - 1]+=$av_w
    else
      av_words+=("$av_w")
    fi
    av_rest=\${av_trimmed#"$av_w"}
  done
  __agentvault_analyse "\${av_words[@]:1}"
  # readline replaces only the text after the last word-break character.
  av_raw=\${COMP_WORDS[COMP_CWORD]}
  case $av_raw in
    [=:]) av_raw= ;;
  esac
  __av_full=$__av_prefix$__av_cur
  __av_strip=\${__av_full%"$av_raw"}
  while IFS= read -r av_line; do
    [ -n "$av_line" ] && __agentvault_reply "$__av_prefix\${av_line%%$'\\t'*}"
  done <<<"$__av_out"
  case $__av_vk in
    files)
      compopt -o filenames 2>/dev/null
      while IFS= read -r av_line; do
        [ -n "$av_line" ] && __agentvault_reply "$__av_prefix$av_line"
      done < <(compgen -f -- "$__av_cur")
      ;;
    profiles) __agentvault_names "$av_home/${COMPLETION_DIR}/${PROFILES_FILE}" ;;
    secrets) __agentvault_names "$av_home/${COMPLETION_DIR}/${SECRETS_FILE}" ;;
    envvars) COMPREPLY+=($(compgen -e -- "$__av_cur")) ;;
    commands)
      while IFS= read -r av_line; do
        [ -n "$av_line" ] && COMPREPLY+=("$av_line")
      done < <(compgen -c -- "$__av_cur" | sort -u)
      case $__av_cur in
        */*)
          compopt -o filenames 2>/dev/null
          COMPREPLY+=($(compgen -f -- "$__av_cur"))
          ;;
      esac
      ;;
    execargs)
      # The command's own completion when bash-completion is loaded, else file names.
      if declare -F _command_offset >/dev/null; then
        for ((av_i = 1; av_i < COMP_CWORD; av_i++)); do
          [ "\${COMP_WORDS[av_i]}" = -- ] && break
        done
        if [ $av_i -lt COMP_CWORD ]; then
          _command_offset $((av_i + 1))
          return 0
        fi
      fi
      compopt -o filenames 2>/dev/null
      while IFS= read -r av_line; do
        [ -n "$av_line" ] && COMPREPLY+=("$av_line")
      done < <(compgen -f -- "$__av_cur")
      ;;
  esac
  return 0
}

complete -F _${bin} ${bin}
`
}

/** The zsh completion function: `_agentvault` in a directory on $fpath (or sourced, after compinit). */
export function zshScript(spec: CompletionSpec, bin = 'agentvault'): string {
  return `#compdef ${bin}
${HEADER}

${sharedFunctions(spec)}
# Each line of a names file, with the prefix typed before it.
__agentvault_zsh_names() {
  [[ -r $1 ]] || return 0
  local -a av_names
  av_names=("\${(@f)$(<"$1")}")
  av_names=("\${(@)av_names:#}")
  (( \${#av_names} )) && compadd -- "\${(@)av_names/#/$__av_prefix}"
  return 0
}

_${bin}() {
  local av_line av_home=\${AGENTVAULT_HOME:-$HOME/.agentvault}
  local -a av_cands av_descs
  __agentvault_analyse "\${(@)words[2,CURRENT]}"
  for av_line in "\${(@f)__av_out}"; do
    [[ -n $av_line ]] || continue
    av_cands+=("$__av_prefix\${av_line%%$'\\t'*}")
    if [[ $av_line == *$'\\t'* ]]; then
      av_descs+=("\${av_line%%$'\\t'*}  -- \${av_line#*$'\\t'}")
    else
      av_descs+=("$av_line")
    fi
  done
  (( \${#av_cands} )) && compadd -l -d av_descs -- "\${(@)av_cands}"
  case $__av_vk in
    files)
      [[ -n $__av_prefix ]] && compset -P '*='
      _files
      ;;
    profiles) __agentvault_zsh_names "$av_home/${COMPLETION_DIR}/${PROFILES_FILE}" ;;
    secrets) __agentvault_zsh_names "$av_home/${COMPLETION_DIR}/${SECRETS_FILE}" ;;
    envvars) compadd -- \${(k)parameters[(R)*export*]} ;;
    commands | execargs)
      # The command after \`--\` completes as if typed on its own line (its own completion).
      words=("\${(@)words[$((__av_skip + 2)),-1]}")
      CURRENT=$((CURRENT - __av_skip - 1))
      _normal
      ;;
  esac
  return 0
}

if [ "\${funcstack[1]}" = _${bin} ]; then
  _${bin} "$@"
else
  compdef _${bin} ${bin}
fi
`
}
