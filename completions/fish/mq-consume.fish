# fish completion for mq-consume: tail or consume a topic.

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

complete -c mq-consume -f
complete -c mq-consume -s t -l topic -x -a '(__mq_names topics topic)' -d 'topic to read'
complete -c mq-consume -s g -l group -x -a '(__mq_names groups group)' -d 'consumer group'
complete -c mq-consume -s b -l broker -x -d 'brokers HOST:PORT[,HOST:PORT...]'
complete -c mq-consume -l credentials -r -F -d 'file with user and password lines'
complete -c mq-consume -l tls-ca -r -F -d 'connect with TLS, trusting this CA'
complete -c mq-consume -l from -x -a 'earliest latest' -d 'start: earliest, latest, OFFSET, -N or TIME'
complete -c mq-consume -s n -l count -x -d 'stop after COUNT messages'
complete -c mq-consume -s e -l exit -d 'stop at the end of every queue'
complete -c mq-consume -l format -x -a 'body json' -d 'output: body, json or a template'
complete -c mq-consume -s 0 -l null -d 'end each body with NUL'
complete -c mq-consume -l tag -x -d 'only these tags (TAG||TAG)'
complete -c mq-consume -l timeout -x -d 'per request to a broker, on top of a long poll'
complete -c mq-consume -l exec -x -a '(__fish_complete_command)' -d 'run a command per message'
complete -c mq-consume -l concurrency -x -d 'commands running at once'
complete -c mq-consume -l orderly -d 'keep each queue strictly in order'
complete -c mq-consume -l max-span -x -d 'largest in-flight offset span per queue'
complete -c mq-consume -l consume-timeout -x -d 'a message unfinished after this has failed'
complete -c mq-consume -l max-retries -x -d 'deliveries before the dead-letter queue'
complete -c mq-consume -l commit-interval -x -d 'how often offsets are committed'
complete -c mq-consume -l stop-grace -x -d 'on SIGINT/SIGTERM, how long running commands may finish'
complete -c mq-consume -s q -l quiet -d 'only print errors'
complete -c mq-consume -s v -l verbose -d 'more diagnostics (repeat for a trace)'
complete -c mq-consume -s h -l help -d 'show help and exit'
complete -c mq-consume -l version -d 'show version and exit'
