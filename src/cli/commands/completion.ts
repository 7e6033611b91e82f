import type { Command } from '../command.ts';
import { parseFlags } from '../flags.ts';

/**
 * `berth completion bash|zsh|fish`: a script for `source <(berth completion
 * bash)`. Each script only hands the words typed so far to `berth
 * __complete` (the same berth the user typed, with its global flags), so the
 * candidates stay right as commands change.
 */
const scripts: Record<string, string> = {
  bash: `# bash completion for berth: source <(berth completion bash)
_berth() {
  local IFS=$'\\n'
  local -a words=()
  local i w
  # bash splits words at ':' (COMP_WORDBREAKS): join "busybox" ":" "1" back into one word.
  for ((i = 1; i <= COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((\${#words[@]})) && [[ "$w" == ":" || "\${words[\${#words[@]}-1]}" == *: ]]; then
      words[\${#words[@]}-1]+="$w"
    else
      words+=("$w")
    fi
  done
  local cur="\${words[\${#words[@]}-1]}"
  COMPREPLY=($("\${COMP_WORDS[0]}" __complete "\${words[@]}" 2>/dev/null))
  # bash replaces only what follows the last ':' of the word.
  if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
    local prefix="\${cur%"\${cur##*:}"}"
    COMPREPLY=("\${COMPREPLY[@]#"$prefix"}")
  fi
}
complete -o default -F _berth berth
`,
  zsh: `#compdef berth
# zsh completion for berth: source <(berth completion zsh)
_berth() {
  local -a candidates
  candidates=("\${(@f)$("\${words[1]}" __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=("\${(@)candidates:#}")
  compadd -Q -- "\${candidates[@]}"
}
if (( $+functions[compdef] )); then compdef _berth berth; fi
`,
  fish: `# fish completion for berth: berth completion fish | source
function __berth_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    $tokens[1] __complete $tokens[2..-1] "$current" 2>/dev/null
end
complete -c berth -f -a '(__berth_complete)'
`,
};

export const command: Command = {
  usage: 'berth completion bash|zsh|fish',
  summary: 'Generate the autocompletion script for the specified shell',
  args: ['none'],
  async run(argv, env) {
    const { args } = parseFlags(argv, {});
    const script = args.length === 1 ? scripts[args[0]] : undefined;
    if (!script) {
      env.stderr.write(`berth: "completion" requires exactly 1 argument: bash, zsh or fish.\nSee 'berth completion --help'.\n\nUsage:  ${this.usage}\n`);
      return 1;
    }
    env.stdout.write(script);
    return 0;
  },
};
