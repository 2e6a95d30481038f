# fish completion for mq-replay: re-read or re-publish stored messages.

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

complete -c mq-replay -f
complete -c mq-replay -s t -l topic -x -a '(__mq_names topics topic)' -d 'topic to read'
complete -c mq-replay -s b -l broker -x -d 'brokers HOST:PORT[,HOST:PORT...]'
complete -c mq-replay -l from -x -d 'first OFFSET or TIME'
complete -c mq-replay -l until -x -d 'stop before OFFSET or TIME'
complete -c mq-replay -l queue -x -d 'only this queue'
complete -c mq-replay -l key -x -d 'only this key'
complete -c mq-replay -l tag -x -d 'only these tags (TAG||TAG)'
complete -c mq-replay -l format -x -a 'body json' -d 'output: body, json or a template'
complete -c mq-replay -s 0 -l null -d 'end each body with NUL'
complete -c mq-replay -l merge -d 'order all queues by store time'
complete -c mq-replay -l to-topic -x -a '(__mq_names topics topic)' -d 're-publish to this topic'
complete -c mq-replay -l rate -x -d 'at most N messages per second'
complete -c mq-replay -l receipts -d 'print one receipt line per message published'
complete -c mq-replay -l window -x -d 'messages in flight when publishing'
complete -c mq-replay -l timeout -x -d 'time budget per request'
complete -c mq-replay -l dlq -x -a '(__mq_names groups group)' -d 're-drive the dead letters of GROUP'
complete -c mq-replay -l dry-run -d 'list dead letters, publish nothing'
complete -c mq-replay -l force -d 're-drive dead letters again'
complete -c mq-replay -s i -l input -r -F -d 're-publish a --format json file'
complete -c mq-replay -s q -l quiet -d 'only print errors'
complete -c mq-replay -s v -l verbose -d 'more diagnostics (repeat for a trace)'
complete -c mq-replay -s h -l help -d 'show help and exit'
complete -c mq-replay -l version -d 'show version and exit'
