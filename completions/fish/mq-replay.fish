# fish completion for mq-replay: re-read or re-publish stored messages.

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

complete -c mq-replay -f
complete -c mq-replay -s t -l topic -x -a '(__mq_names topics topic)' -d 'topic to read'
complete -c mq-replay -s b -l broker -x -d 'brokers HOST:PORT[,HOST:PORT...]'
complete -c mq-replay -l credentials -r -F -d 'file with user and password lines'
complete -c mq-replay -l tls-ca -r -F -d 'connect with TLS, trusting this CA'
complete -c mq-replay -l from -x -a 'earliest latest' -d 'first OFFSET, -N or TIME'
complete -c mq-replay -l until -x -a 'latest' -d 'stop before OFFSET, -N or TIME'
complete -c mq-replay -l queue -x -d 'only this queue'
complete -c mq-replay -l key -x -d 'only this key'
complete -c mq-replay -l tag -x -d 'only these tags (TAG||TAG)'
complete -c mq-replay -l format -x -a 'body json' -d 'output: body, json or a template'
complete -c mq-replay -s 0 -l null -d 'end each body with NUL'
complete -c mq-replay -l merge -d 'order all queues by store time'
complete -c mq-replay -l to-topic -x -a '(__mq_names topics topic public)' -d 're-publish to this topic'
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
