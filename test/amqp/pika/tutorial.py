"""What the six tutorial programs share: the command line, a hard deadline,
the connection, and a consumer that stops after a given number of messages.

Every program is run as

    python3 PROGRAM.py AMQP_URL [--timeout SECONDS] ROLE [ROLE ARGUMENTS]

and exits 0 when its role is done, 1 on an error (with a traceback) and 3
when the deadline passes first.
"""

import argparse
import os
import signal
import sys

import pika


def say(line):
    """Print a line at once: the test reads stdout while the program runs."""
    print(line, flush=True)


def main(description, roles):
    """roles maps a role name to (function, add_arguments); the function is
    called with an open channel and the parsed arguments."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('url', help='AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672')
    parser.add_argument('--timeout', type=float, default=10, help='give up after SECONDS')
    commands = parser.add_subparsers(dest='role', required=True)
    for name, (function, add_arguments) in roles.items():
        command = commands.add_parser(name)
        add_arguments(command)
        command.set_defaults(function=function)
    args = parser.parse_args()

    set_deadline(args.timeout)
    connection = connect(args.url)
    try:
        args.function(connection.channel(), args)
    finally:
        if connection.is_open:
            connection.close()


def set_deadline(seconds):
    def expire(_signum, _frame):
        print(f'timed out after {seconds} s', file=sys.stderr, flush=True)
        os._exit(3)

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def connect(url):
    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = 5
    parameters.blocked_connection_timeout = 5
    return pika.BlockingConnection(parameters)


def consume(channel, queue, count, handle):
    """Consume `queue` with automatic acks, call handle(method, properties,
    body) for each message, and stop after `count` of them."""
    handled = 0

    def on_message(ch, method, properties, body):
        nonlocal handled
        handle(method, properties, body)
        handled += 1
        if handled == count:
            ch.stop_consuming()

    channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=True)
    say(f' [*] Waiting for messages on {queue}')
    channel.start_consuming()
