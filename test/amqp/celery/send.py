"""Sends the tasks named on the command line to the Celery app's queue.

  send.py record NAME [--countdown S]
  send.py fails_once NAME
"""

import argparse

import usher_tasks

parser = argparse.ArgumentParser()
parser.add_argument('task', choices=['record', 'fails_once'])
parser.add_argument('names', nargs='+')
parser.add_argument('--countdown', type=float)
args = parser.parse_args()

task = getattr(usher_tasks, args.task)
for name in args.names:
    task.apply_async((name,), countdown=args.countdown)
    print(f'sent {args.task} {name}', flush=True)
