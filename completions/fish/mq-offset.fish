# fish completion for mq-offset: inspect and move offsets.

# __mq_names KIND HEADER lists live topic or group names: functions/__mq_names.fish next to
# this file in the source tree, vendor_functions.d (autoloaded) once installed.
if not functions -q __mq_names
    for f in (status dirname)/functions/__mq_names.fish (status dirname)/../vendor_functions.d/__mq_names.fish
        if test -f $f
            source $f
            break
        end
    end
end

# True until the command word is typed; unlike __fish_use_subcommand it knows which
# options take a value (in "mq-offset -b HOST:PORT " the address is no command).
function __mq_offset_needs_command
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        switch $t
            case -b --broker --timeout --format --credentials --tls-ca
                set skip 1
            case '-*'
            case '*'
                return 1
        end
    end
    return 0
end

complete -c mq-offset -f
complete -c mq-offset -n '__mq_offset_needs_command' -a topics -d 'queues, offsets and sizes of topics'
complete -c mq-offset -n '__mq_offset_needs_command' -a show -d 'committed offsets and lag of a group'
complete -c mq-offset -n '__mq_offset_needs_command' -a groups -d 'groups, live members and total lag'
complete -c mq-offset -n '__mq_offset_needs_command' -a reset -d 'move the committed offsets of a group'
complete -c mq-offset -n '__mq_offset_needs_command' -a export -d 'write the offsets of a group as TSV'
complete -c mq-offset -n '__mq_offset_needs_command' -a import -d 'set offsets from TSV on stdin'
complete -c mq-offset -n '__fish_seen_subcommand_from topics show reset export' -s t -l topic -x -a '(__mq_names topics topic)' -d 'topic'
complete -c mq-offset -n '__fish_seen_subcommand_from show reset export' -s g -l group -x -a '(__mq_names groups group)' -d 'consumer group'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l to -x -a 'earliest latest' -d 'reset to earliest, latest or OFFSET'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l to-time -x -d 'reset to the first message at or after TIME'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l shift -x -d 'reset by moving N offsets'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l queue -x -d 'only this queue'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l dry-run -d 'show the reset without applying it'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l undo-dir -x -a '(__fish_complete_directories)' -d 'where reset undo files go'
complete -c mq-offset -l format -x -a 'table tsv json' -d 'output format'
complete -c mq-offset -l timeout -x -d 'timeout per request'
complete -c mq-offset -s b -l broker -x -d 'brokers HOST:PORT[,HOST:PORT...]'
complete -c mq-offset -l credentials -r -F -d 'file with user and password lines'
complete -c mq-offset -l tls-ca -r -F -d 'connect with TLS, trusting this CA'
complete -c mq-offset -s q -l quiet -d 'only print errors'
complete -c mq-offset -s v -l verbose -d 'more diagnostics (repeat for a trace)'
complete -c mq-offset -s h -l help -d 'show help and exit'
complete -c mq-offset -n '__mq_offset_needs_command' -l version -d 'show version and exit'
