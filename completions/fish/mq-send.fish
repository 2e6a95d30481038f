# fish completion for mq-send: publish messages to a topic.

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

complete -c mq-send -f
complete -c mq-send -s t -l topic -x -a '(__mq_names topics topic)' -d 'topic to publish to'
complete -c mq-send -s b -l broker -x -d 'brokers HOST:PORT[,HOST:PORT...]'
complete -c mq-send -l mode -x -a 'sync async oneway' -d 'send mode'
complete -c mq-send -l window -x -d 'messages in flight in async mode'
complete -c mq-send -l retries -x -d 'retries after a failed attempt'
complete -c mq-send -l timeout -x -d 'time to be acknowledged, retries included'
complete -c mq-send -s k -l key -x -d 'message key'
complete -c mq-send -l tag -x -d 'message tag'
complete -c mq-send -s p -l prop -x -d 'property NAME=VALUE (repeatable)'
complete -c mq-send -l queue -x -d 'send every message to this queue'
complete -c mq-send -s 0 -l null -d 'stdin holds NUL-separated messages'
complete -c mq-send -l raw -d 'all of stdin is one message'
complete -c mq-send -l json -d 'stdin holds one JSON object per line'
complete -c mq-send -l receipts -d 'print one receipt line per message'
complete -c mq-send -s q -l quiet -d 'only print errors'
complete -c mq-send -s v -l verbose -d 'more diagnostics (repeat for a trace)'
complete -c mq-send -s h -l help -d 'show help and exit'
complete -c mq-send -l version -d 'show version and exit'
