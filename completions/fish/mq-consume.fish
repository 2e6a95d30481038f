# fish completion for mq-consume: tail or consume a topic.

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

complete -c mq-consume -f
complete -c mq-consume -s t -l topic -x -a '(__mq_names topics topic)' -d 'topic to read'
complete -c mq-consume -s g -l group -x -a '(__mq_names groups group)' -d 'consumer group'
complete -c mq-consume -s b -l broker -x -d 'brokers HOST:PORT[,HOST:PORT...]'
complete -c mq-consume -l from -x -a 'earliest latest' -d 'start: earliest, latest, OFFSET or TIME'
complete -c mq-consume -s n -l count -x -d 'stop after COUNT messages'
complete -c mq-consume -s e -l exit -d 'stop at the end of every queue'
complete -c mq-consume -l format -x -a 'body json' -d 'output: body, json or a template'
complete -c mq-consume -s 0 -l null -d 'end each body with NUL'
complete -c mq-consume -l tag -x -d 'only these tags (TAG||TAG)'
complete -c mq-consume -l exec -x -a '(__fish_complete_command)' -d 'run a command per message'
complete -c mq-consume -l concurrency -x -d 'commands running at once'
complete -c mq-consume -l orderly -d 'keep each queue strictly in order'
complete -c mq-consume -l max-span -x -d 'largest in-flight offset span per queue'
complete -c mq-consume -l consume-timeout -x -d 'a message unfinished after this has failed'
complete -c mq-consume -l max-retries -x -d 'deliveries before the dead-letter queue'
complete -c mq-consume -l commit-interval -x -d 'how often offsets are committed'
complete -c mq-consume -s q -l quiet -d 'only print errors'
complete -c mq-consume -s v -l verbose -d 'more diagnostics (repeat for a trace)'
complete -c mq-consume -s h -l help -d 'show help and exit'
complete -c mq-consume -l version -d 'show version and exit'
