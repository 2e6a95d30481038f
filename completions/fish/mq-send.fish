# fish completion for mq-send: publish messages to a topic.

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

complete -c mq-send -f
complete -c mq-send -s t -l topic -x -a '(__mq_names topics topic public)' -d 'topic to publish to'
complete -c mq-send -s b -l broker -x -d 'brokers HOST:PORT[,HOST:PORT...]'
complete -c mq-send -l credentials -r -F -d 'file with user and password lines'
complete -c mq-send -l tls-ca -r -F -d 'connect with TLS, trusting this CA'
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
