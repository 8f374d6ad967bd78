"""A small Celery app for test/amqp/celery.test.ts: tasks that write a line
to a log file when they run, so the test sees what ran and when.

The broker URL and the log file come from the environment
(USHER_AMQP_URL, USHER_CELERY_LOG). Nothing here knows it talks to Usher:
the point is that a Celery app written for RabbitMQ runs unchanged.
"""

import os
import time

from celery import Celery

app = Celery('usher_tasks', broker=os.environ['USHER_AMQP_URL'])
app.conf.update(
    task_default_queue='usher-celery',
    # One task at a time, one prefetched: the smallest window, where a
    # held delayed task shows at once if the prefetch is not raised.
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=False,
)

LOG = os.environ['USHER_CELERY_LOG']


def note(line):
    with open(LOG, 'a', encoding='utf-8') as log:
        log.write(f'{line} {time.time():.3f}\n')


@app.task
def record(name):
    note(name)


@app.task(bind=True, max_retries=3)
def fails_once(self, name):
    if self.request.retries == 0:
        note(f'{name}:failed')
        raise self.retry(countdown=1)
    note(f'{name}:retried')
