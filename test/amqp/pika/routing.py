"""Tutorial 4, routing: emit sends a log line to the direct exchange
'direct_logs' with its severity as routing key; a receiver binds its queue
once per severity it wants and prints 'severity:line'."""

from tutorial import consume, main, say


def emit(channel, args):
    channel.exchange_declare(exchange='direct_logs', exchange_type='direct')
    channel.basic_publish(exchange='direct_logs', routing_key=args.severity, body=args.message)
    say(f' [x] Sent {args.severity}:{args.message}')


def receive(channel, args):
    channel.exchange_declare(exchange='direct_logs', exchange_type='direct')
    queue = channel.queue_declare(queue='', exclusive=True).method.queue
    for severity in args.severities:
        channel.queue_bind(exchange='direct_logs', queue=queue, routing_key=severity)
    consume(channel, queue, args.count,
            lambda method, properties, body: say(f' [x] {method.routing_key}:{body.decode()}'))


def receive_arguments(parser):
    parser.add_argument('--count', type=int, default=1)
    parser.add_argument('severities', nargs='+')


def emit_arguments(parser):
    parser.add_argument('severity')
    parser.add_argument('message')


main(__doc__, {'emit': (emit, emit_arguments), 'receive': (receive, receive_arguments)})
