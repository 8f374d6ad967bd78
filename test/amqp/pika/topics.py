"""Tutorial 5, topics: emit sends a line to the topic exchange 'topic_logs'
under a dotted routing key; a receiver binds patterns where '*' stands for
one word and '#' for zero or more, and prints 'key:line'."""

from tutorial import consume, main, say


def emit(channel, args):
    channel.exchange_declare(exchange='topic_logs', exchange_type='topic')
    channel.basic_publish(exchange='topic_logs', routing_key=args.routing_key, body=args.message)
    say(f' [x] Sent {args.routing_key}:{args.message}')


def receive(channel, args):
    channel.exchange_declare(exchange='topic_logs', exchange_type='topic')
    queue = channel.queue_declare(queue='', exclusive=True).method.queue
    for binding_key in args.binding_keys:
        channel.queue_bind(exchange='topic_logs', queue=queue, routing_key=binding_key)
    consume(channel, queue, args.count,
            lambda method, properties, body: say(f' [x] {method.routing_key}:{body.decode()}'))


def receive_arguments(parser):
    parser.add_argument('--count', type=int, default=1)
    parser.add_argument('binding_keys', nargs='+')


def emit_arguments(parser):
    parser.add_argument('routing_key')
    parser.add_argument('message')


main(__doc__, {'emit': (emit, emit_arguments), 'receive': (receive, receive_arguments)})
