# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rollama_global_optspecs
    string join \n v/version h/help
end

function __fish_rollama_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rollama_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rollama_using_subcommand
    set -l cmd (__fish_rollama_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rollama -n "__fish_rollama_needs_command" -s v -l version -d 'Show version information'
complete -c rollama -n "__fish_rollama_needs_command" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "serve" -d 'Start rollama'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "start" -d 'Start rollama'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "create" -d 'Create a model'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "show" -d 'Show information for a model'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "run" -d 'Run a model'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "stop" -d 'Stop a running model'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "pull" -d 'Pull a model from a registry'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "push" -d 'Push a model to a registry'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "list" -d 'List models'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "ls" -d 'List models'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "ps" -d 'List running models'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "cp" -d 'Copy a model'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "rm" -d 'Remove a model'
complete -c rollama -n "__fish_rollama_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rollama -n "__fish_rollama_using_subcommand serve" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand start" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand create" -s f -l file -d 'Name of the Modelfile (default "Modelfile")' -r -F
complete -c rollama -n "__fish_rollama_using_subcommand create" -s q -l quantize -d 'Quantize model to this level (e.g. q4_K_M)' -r
complete -c rollama -n "__fish_rollama_using_subcommand create" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand show" -l license -d 'Show license of a model'
complete -c rollama -n "__fish_rollama_using_subcommand show" -l modelfile -d 'Show Modelfile of a model'
complete -c rollama -n "__fish_rollama_using_subcommand show" -l parameters -d 'Show parameters of a model'
complete -c rollama -n "__fish_rollama_using_subcommand show" -l system -d 'Show system message of a model'
complete -c rollama -n "__fish_rollama_using_subcommand show" -l template -d 'Show template of a model'
complete -c rollama -n "__fish_rollama_using_subcommand show" -s v -l verbose -d 'Show detailed model information'
complete -c rollama -n "__fish_rollama_using_subcommand show" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand run" -l keepalive -d 'Duration to keep a model loaded (e.g. 5m)' -r
complete -c rollama -n "__fish_rollama_using_subcommand run" -l format -d 'Response format (e.g. json)' -r
complete -c rollama -n "__fish_rollama_using_subcommand run" -l think -d 'Enable thinking mode: true/false or high/medium/low for supported models' -r
complete -c rollama -n "__fish_rollama_using_subcommand run" -l truncate -d 'For embedding models: truncate inputs that exceed the context length (default: true). Set --truncate=false to error instead' -r -f -a "true\t''
false\t''"
complete -c rollama -n "__fish_rollama_using_subcommand run" -l dimensions -d 'Truncate output embeddings to specified dimension (embedding models only)' -r
complete -c rollama -n "__fish_rollama_using_subcommand run" -l verbose -d 'Show timings for response'
complete -c rollama -n "__fish_rollama_using_subcommand run" -l insecure -d 'Use an insecure registry'
complete -c rollama -n "__fish_rollama_using_subcommand run" -l nowordwrap -d 'Don\'t wrap words to the next line automatically'
complete -c rollama -n "__fish_rollama_using_subcommand run" -l hidethinking -d 'Hide thinking output (if provided)'
complete -c rollama -n "__fish_rollama_using_subcommand run" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand stop" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand pull" -l insecure -d 'Use an insecure registry'
complete -c rollama -n "__fish_rollama_using_subcommand pull" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand push" -l insecure -d 'Use an insecure registry'
complete -c rollama -n "__fish_rollama_using_subcommand push" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand list" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand ls" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand ps" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand cp" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand rm" -s h -l help -d 'Print help'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "serve" -d 'Start rollama'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "create" -d 'Create a model'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "show" -d 'Show information for a model'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "run" -d 'Run a model'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "stop" -d 'Stop a running model'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "pull" -d 'Pull a model from a registry'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "push" -d 'Push a model to a registry'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "list" -d 'List models'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "ps" -d 'List running models'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "cp" -d 'Copy a model'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "rm" -d 'Remove a model'
complete -c rollama -n "__fish_rollama_using_subcommand help; and not __fish_seen_subcommand_from serve create show run stop pull push list ps cp rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
