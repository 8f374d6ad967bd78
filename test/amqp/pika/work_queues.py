"""Tutorial 2, work queues: new_task puts tasks on the durable queue
'task_queue' as persistent messages; each worker takes one task at a time
(prefetch 1), sleeps a while for every '.' in it, and acks when done.

A worker stops at the task 'stop': it cancels its consumer before acking, so
no further task can reach it, and the next 'stop' goes to another worker.
"""

import time

import pika

from tutorial import main, say


def new_task(channel, args):
    channel.queue_declare(queue='task_queue', durable=True)
    for message in args.messages:
        channel.basic_publish(
            exchange='', routing_key='task_queue', body=message,
            properties=pika.BasicProperties(delivery_mode=pika.spec.PERSISTENT_DELIVERY_MODE))
        say(f' [x] Sent {message!r}')


def worker(channel, args):
    channel.queue_declare(queue='task_queue', durable=True)
    channel.basic_qos(prefetch_count=1)

    def on_message(ch, method, properties, body):
        task = body.decode()
        if task == 'stop':
            ch.basic_cancel(method.consumer_tag)
            ch.basic_ack(delivery_tag=method.delivery_tag)
            return
        say(f' [x] Received {task!r}')
        time.sleep(task.count('.') * args.seconds_per_dot)
        say(f' [x] Done {task!r}')
        ch.basic_ack(delivery_tag=method.delivery_tag)

    channel.basic_consume(queue='task_queue', on_message_callback=on_message)
    say(' [*] Waiting for messages on task_queue')
    channel.start_consuming()  # returns once the consumer is cancelled


main(__doc__, {
    'new_task': (new_task, lambda p: p.add_argument('messages', nargs='+')),
    'worker': (worker, lambda p: p.add_argument('--seconds-per-dot', type=float, default=0.05)),
})
