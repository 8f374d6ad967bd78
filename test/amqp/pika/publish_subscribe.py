"""Tutorial 3, publish/subscribe: emit sends a log line to the fanout
exchange 'logs'; every receiver binds a server-named exclusive queue to it
and prints every line."""

from tutorial import consume, main, say


def emit(channel, args):
    channel.exchange_declare(exchange='logs', exchange_type='fanout')
    channel.basic_publish(exchange='logs', routing_key='', body=args.message)
    say(f' [x] Sent {args.message!r}')


def receive(channel, args):
    channel.exchange_declare(exchange='logs', exchange_type='fanout')
    queue = channel.queue_declare(queue='', exclusive=True).method.queue
    channel.queue_bind(exchange='logs', queue=queue)
    consume(channel, queue, args.count,
            lambda method, properties, body: say(f' [x] {body.decode()}'))


main(__doc__, {
    'emit': (emit, lambda p: p.add_argument('message')),
    'receive': (receive, lambda p: p.add_argument('--count', type=int, default=1)),
})
