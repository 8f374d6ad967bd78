"""Tutorial 6, RPC: the server answers requests on 'rpc_queue' with the
Fibonacci number asked for, sent to the request's reply_to queue under its
correlation_id; the client waits on a server-named exclusive queue for the
reply whose correlation_id matches its request."""

import uuid

import pika

from tutorial import main, say


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def server(channel, args):
    channel.queue_declare(queue='rpc_queue')
    channel.basic_qos(prefetch_count=1)
    served = 0

    def on_request(ch, method, properties, body):
        nonlocal served
        n = int(body)
        say(f' [.] fib({n})')
        ch.basic_publish(exchange='', routing_key=properties.reply_to, body=str(fib(n)),
                         properties=pika.BasicProperties(correlation_id=properties.correlation_id))
        ch.basic_ack(delivery_tag=method.delivery_tag)
        served += 1
        if served == args.count:
            ch.stop_consuming()

    channel.basic_consume(queue='rpc_queue', on_message_callback=on_request)
    say(' [x] Awaiting RPC requests')
    channel.start_consuming()


class FibonacciRpcClient:
    def __init__(self, channel):
        self.channel = channel
        self.callback_queue = channel.queue_declare(queue='', exclusive=True).method.queue
        channel.basic_consume(queue=self.callback_queue, on_message_callback=self.on_response,
                              auto_ack=True)
        self.correlation_id = None
        self.response = None

    def on_response(self, ch, method, properties, body):
        if properties.correlation_id == self.correlation_id:
            self.response = body

    def call(self, n):
        self.correlation_id = str(uuid.uuid4())
        self.response = None
        self.channel.basic_publish(
            exchange='', routing_key='rpc_queue', body=str(n),
            properties=pika.BasicProperties(reply_to=self.callback_queue,
                                            correlation_id=self.correlation_id))
        while self.response is None:
            self.channel.connection.process_data_events(time_limit=None)
        return int(self.response)


def client(channel, args):
    fibonacci = FibonacciRpcClient(channel)
    for n in args.numbers:
        say(f' [x] Requesting fib({n})')
        say(f' [.] fib({n})={fibonacci.call(n)}')


main(__doc__, {
    'server': (server, lambda p: p.add_argument('--count', type=int, default=1)),
    'client': (client, lambda p: p.add_argument('numbers', type=int, nargs='+')),
})
