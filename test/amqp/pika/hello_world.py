"""Tutorial 1, "Hello World!": a producer sends one message to the queue
'hello' through the default exchange; a consumer prints what arrives."""

from tutorial import consume, main, say


def send(channel, args):
    channel.queue_declare(queue='hello')
    channel.basic_publish(exchange='', routing_key='hello', body=args.message)
    say(f' [x] Sent {args.message!r}')


def receive(channel, args):
    channel.queue_declare(queue='hello')
    consume(channel, 'hello', args.count,
            lambda method, properties, body: say(f' [x] Received {body.decode()!r}'))


main(__doc__, {
    'send': (send, lambda p: p.add_argument('message', nargs='?', default='Hello World!')),
    'receive': (receive, lambda p: p.add_argument('--count', type=int, default=1)),
})
