# fish completion for mq-offset: inspect and move offsets.

# Names from `mq-offset KIND --format tsv` of a running broker (-b typed, or MQ_BROKER);
# silent when no broker answers within a second.
function __mq_names --argument-names kind header
    set -l tokens (commandline -opc)
    set -l offset mq-offset
    if string match -q -- '*/*' $tokens[1]; and test -x (dirname -- $tokens[1])/mq-offset
        set offset (dirname -- $tokens[1])/mq-offset
    end
    set -l broker $MQ_BROKER
    set -l n (count $tokens)
    for i in (seq 2 $n)
        switch $tokens[$i]
            case -b --broker
                if test $i -lt $n
                    set broker $tokens[(math $i + 1)]
                end
            case '--broker=*'
                set broker (string replace -- --broker= '' $tokens[$i])
        end
    end
    set -l args
    if test -n "$broker"
        set args -b $broker
    end
    set -a args $kind --format tsv
    timeout 1 $offset $args 2>/dev/null </dev/null | awk -F '\t' -v h=$header 'NR == 1 && $1 == h { next } NF && !seen[$1]++ { print $1 }'
end

complete -c mq-offset -f
complete -c mq-offset -n '__fish_use_subcommand' -a topics -d 'queues, offsets and sizes of topics'
complete -c mq-offset -n '__fish_use_subcommand' -a show -d 'committed offsets and lag of a group'
complete -c mq-offset -n '__fish_use_subcommand' -a groups -d 'groups, live members and total lag'
complete -c mq-offset -n '__fish_use_subcommand' -a reset -d 'move the committed offsets of a group'
complete -c mq-offset -n '__fish_use_subcommand' -a export -d 'write the offsets of a group as TSV'
complete -c mq-offset -n '__fish_use_subcommand' -a import -d 'set offsets from TSV on stdin'
complete -c mq-offset -n '__fish_seen_subcommand_from topics show reset export' -s t -l topic -x -a '(__mq_names topics topic)' -d 'topic'
complete -c mq-offset -n '__fish_seen_subcommand_from show reset export' -s g -l group -x -a '(__mq_names groups group)' -d 'consumer group'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l to -x -a 'earliest latest' -d 'reset to earliest, latest or OFFSET'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l to-time -x -d 'reset to the first message at or after TIME'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l shift -x -d 'reset by moving N offsets'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l queue -x -d 'only this queue'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l dry-run -d 'show the reset without applying it'
complete -c mq-offset -n '__fish_seen_subcommand_from reset' -l undo-dir -x -a '(__fish_complete_directories)' -d 'where reset undo files go'
complete -c mq-offset -l format -x -a 'table tsv json' -d 'output format'
complete -c mq-offset -n '__fish_use_subcommand' -l timeout -x -d 'timeout per request'
complete -c mq-offset -n '__fish_use_subcommand' -s b -l broker -x -d 'brokers HOST:PORT[,HOST:PORT...]'
complete -c mq-offset -n '__fish_use_subcommand' -s q -l quiet -d 'only print errors'
complete -c mq-offset -n '__fish_use_subcommand' -s v -l verbose -d 'more diagnostics (repeat for a trace)'
complete -c mq-offset -s h -l help -d 'show help and exit'
complete -c mq-offset -n '__fish_use_subcommand' -l version -d 'show version and exit'
