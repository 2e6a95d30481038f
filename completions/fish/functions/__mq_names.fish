# fish function shared by the mq completions (installed in vendor_functions.d, where fish autoloads it).

# Names from `mq-offset KIND --format tsv` of a running broker (-b typed, or MQ_BROKER);
# silent when no broker answers within a second.
# A third argument "public" leaves out the broker's own %RETRY%/%DLQ% names (producers may not use them).
function __mq_names --argument-names kind header public
    set -l tokens (commandline -opc)
    set -l offset mq-offset
    if string match -q -- '*/*' $tokens[1]; and test -x (dirname -- $tokens[1])/mq-offset
        set offset (dirname -- $tokens[1])/mq-offset
    end
    set -l broker $MQ_BROKER
    set -l login  # --credentials and --tls-ca as typed
    set -l n (count $tokens)
    for i in (seq 2 $n)
        switch $tokens[$i]
            case -b --broker
                if test $i -lt $n
                    set broker $tokens[(math $i + 1)]
                end
            case '--broker=*'
                set broker (string replace -- --broker= '' $tokens[$i])
            case --credentials --tls-ca
                if test $i -lt $n
                    set -a login $tokens[$i] $tokens[(math $i + 1)]
                end
            case '--credentials=*' '--tls-ca=*'
                set -a login $tokens[$i]
        end
    end
    set -l args $login
    if test -n "$broker"
        set -a args -b $broker
    end
    set -a args $kind --format tsv
    timeout 1 $offset $args 2>/dev/null </dev/null | awk -F '\t' -v h=$header -v pub="$public" 'NR == 1 && $1 == h { next } pub && /^%/ { next } NF && !seen[$1]++ { print $1 }'
end
