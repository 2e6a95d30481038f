# fish completion for mq-broker: the mq server.

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

complete -c mq-broker -f
complete -c mq-broker -l data -x -a '(__fish_complete_directories)' -d 'data directory'
complete -c mq-broker -l listen -x -d 'address to listen on HOST:PORT'
complete -c mq-broker -l flush -x -a 'sync async' -d 'flush before each ack or periodically'
complete -c mq-broker -l flush-interval -x -d 'flush period with --flush async'
complete -c mq-broker -l role -x -a 'master slave' -d 'master or slave'
complete -c mq-broker -l master -x -d 'master to replicate HOST:PORT'
complete -c mq-broker -l replication -x -a 'sync async' -d 'ack after a slave persisted or not'
complete -c mq-broker -l replication-timeout -x -d 'how long to wait for a slave'
complete -c mq-broker -l queues -x -d 'queues of a new topic'
complete -c mq-broker -l max-message-size -x -d 'largest message body'
complete -c mq-broker -l retention -x -d 'delete log segments older than this'
complete -c mq-broker -l segment-size -x -d 'size of a log segment'
complete -c mq-broker -l delay-levels -x -d 'redelivery delays'
complete -c mq-broker -l no-auto-create -d 'do not create topics on first send'
complete -c mq-broker -l ready-file -r -F -d 'write the bound address here when ready'
complete -c mq-broker -l config -r -F -d 'read options from a file'
complete -c mq-broker -l log-level -x -a 'trace debug info warn error off' -d 'log level'
complete -c mq-broker -l max-connections -x -d 'connections served at once'
complete -c mq-broker -s q -l quiet -d 'only print errors'
complete -c mq-broker -s v -l verbose -d 'more diagnostics (repeat for a trace)'
complete -c mq-broker -s h -l help -d 'show help and exit'
complete -c mq-broker -l version -d 'show version and exit'
