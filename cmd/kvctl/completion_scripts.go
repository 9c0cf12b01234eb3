package main

import (
	"fmt"
	"io"
	"strings"
)

// The scripts of kvctl completion, one writer a shell, from a completionSpec.

// shQuote quotes s for bash and zsh: in single quotes, each quote inside
// written as close, escaped quote, reopen.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fishQuote quotes s for fish, whose single quotes take \' and \\.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// commandScanner is the shell code, common to bash and zsh, that finds the
// command among the words before the cursor: the first word that is not a
// flag or a flag's value, and for a group (batch) the word after it too.
func commandScanner(w io.Writer, spec completionSpec, first, words string) {
	fmt.Fprintf(w, "    local valued=%s\n", shQuote(" "+strings.Join(spec.valued, " ")+" "))
	fmt.Fprintf(w, "    local groups=%s\n", shQuote(" "+strings.Join(spec.groups(), " ")+" "))
	fmt.Fprintf(w, `    local cmd="" i w n
    for (( i = %s; i < %s; i++ )); do
        w=${%s[i]}
        case "$w" in
        --) break ;;
        -*=*) ;;
        -*) n=${w#-} && [[ $valued == *" --${n#-} "* ]] && (( i++ )) ;;
        *)
            if [[ -z $cmd ]]; then
                cmd=$w
            elif [[ $groups == *" $cmd "* ]]; then
                cmd="$cmd $w"
            fi
            ;;
        esac
    done
`, first, "$cword", words)
}

func writeBashCompletion(w io.Writer, spec completionSpec) {
	fmt.Fprint(w, `# bash completion for kvctl, written by "kvctl completion bash".
_kvctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cword=$COMP_CWORD
`)
	commandScanner(w, spec, "1", "COMP_WORDS")
	fmt.Fprintf(w, `    local globals=%s
    n=${prev#-} && [[ $valued == *" --${n#-} "* ]] && return
    local words="" flags=""
    case "$cmd" in
    "") words=%s ;;
`, shQuote(flagNames(spec.globals)), shQuote(names(spec.topWords())))
	for _, g := range spec.groups() {
		fmt.Fprintf(w, "    %s) words=%s ;;\n", shQuote(g), shQuote(strings.Join(spec.subcommands(g), " ")))
	}
	for _, c := range spec.commands {
		fmt.Fprintf(w, "    %s) flags=%s words=%s ;;\n", shQuote(c.name), shQuote(flagNames(c.flags)), shQuote(strings.Join(c.operands, " ")))
	}
	fmt.Fprint(w, `    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags $globals" -- "$cur"))
    elif [[ -n $words ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}
complete -o default -F _kvctl kvctl
`)
}

func writeZshCompletion(w io.Writer, spec completionSpec) {
	fmt.Fprint(w, `#compdef kvctl
# zsh completion for kvctl, written by "kvctl completion zsh".
_kvctl() {
    local cword=$CURRENT cur=${words[CURRENT]} prev=${words[CURRENT-1]}
`)
	commandScanner(w, spec, "2", "words")
	fmt.Fprint(w, `    n=${prev#-} && [[ $valued == *" --${n#-} "* ]] && { _files; return; }
    local -a choices flags
    local -a globals=(
`)
	for _, f := range spec.globals {
		fmt.Fprintf(w, "        %s\n", shQuote("--"+f.name+":"+f.usage))
	}
	fmt.Fprint(w, "    )\n    case \"$cmd\" in\n    \"\") choices=(\n")
	for _, c := range spec.topWords() {
		fmt.Fprintf(w, "        %s\n", shQuote(c.name+":"+c.summary))
	}
	fmt.Fprint(w, "    ) ;;\n")
	for _, g := range spec.groups() {
		fmt.Fprintf(w, "    %s) choices=(%s) ;;\n", shQuote(g), strings.Join(spec.subcommands(g), " "))
	}
	for _, c := range spec.commands {
		fmt.Fprintf(w, "    %s)\n        flags=(", shQuote(c.name))
		for _, f := range c.flags {
			fmt.Fprintf(w, "\n            %s", shQuote("--"+f.name+":"+f.usage))
		}
		fmt.Fprintf(w, "\n        )\n        choices=(%s) ;;\n", strings.Join(c.operands, " "))
	}
	fmt.Fprint(w, `    esac
    if [[ $cur == -* ]]; then
        _describe -t flags 'flag' flags -- globals
    elif (( ${#choices} )); then
        _describe -t commands 'kvctl command' choices
    else
        _files
    fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _kvctl "$@"
else
    compdef _kvctl kvctl
fi
`)
}

func writeFishCompletion(w io.Writer, spec completionSpec) {
	fmt.Fprintf(w, `# fish completion for kvctl, written by "kvctl completion fish".
# __kvctl_command prints the command among the words typed so far.
function __kvctl_command
    set -l valued %s
    set -l groups %s
    set -l cmd
    set -l skip 0
    set -l typed (commandline -opc)
    set -e typed[1]
    for w in $typed
        if test $skip = 1
            set skip 0
        else if test "$w" = --
            break
        else if string match -q -- '-*=*' $w
            # the flag's value is in the word
        else if string match -q -- '-*' $w
            if contains -- (string replace -r -- '^-+' '--' $w) $valued
                set skip 1
            end
        else if test -z "$cmd"
            set cmd $w
        else if contains -- "$cmd" $groups
            set cmd "$cmd $w"
        end
    end
    echo $cmd
end

function __kvctl_is
    set -l cmd (__kvctl_command)
    test "$cmd" = "$argv[1]"
end

`, strings.Join(spec.valued, " "), strings.Join(spec.groups(), " "))
	fishFlags(w, "", spec.globals)
	for _, c := range spec.topWords() {
		fmt.Fprintf(w, "complete -c kvctl -n '__kvctl_is \"\"' -f -a %s -d %s\n", fishQuote(c.name), fishQuote(c.summary))
	}
	for _, g := range spec.groups() {
		for _, sub := range spec.subcommands(g) {
			fmt.Fprintf(w, "complete -c kvctl -n %s -f -a %s\n", fishQuote("__kvctl_is "+g), fishQuote(sub))
		}
	}
	for _, c := range spec.commands {
		fishFlags(w, c.name, c.flags)
		for _, op := range c.operands {
			fmt.Fprintf(w, "complete -c kvctl -n %s -f -a %s\n", fishQuote(`__kvctl_is "`+c.name+`"`), fishQuote(op))
		}
	}
}

// fishFlags completes flags, only after the command cmd when it is not "".
func fishFlags(w io.Writer, cmd string, flags []flagSpec) {
	for _, f := range flags {
		cond := ""
		if cmd != "" {
			cond = " -n " + fishQuote(`__kvctl_is "`+cmd+`"`)
		}
		valued := ""
		if f.valued {
			valued = " -r"
		}
		fmt.Fprintf(w, "complete -c kvctl%s -l %s%s -d %s\n", cond, f.name, valued, fishQuote(f.usage))
	}
}
