"""Runs the Django app tests/python/django_app against database argv[1]:
its migrations, then the ORM's nearest-neighbour queries; prints what it
found as JSON. A separate process: Django's setup is process-wide."""

import json
import os
import sys

import django
from django.conf import settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": sys.argv[1],
                           "HOST": os.environ["PGHOST"], "PORT": os.environ["PGPORT"], "USER": "postgres"}},
    INSTALLED_APPS=["django_app"],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    USE_TZ=True,
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from pgvector.django import CosineDistance, L2Distance  # noqa: E402

from django_app.models import Item  # noqa: E402

call_command("migrate", "django_app", verbosity=0)
Item.objects.bulk_create([Item(embedding=[i, i % 5, 1], half=[i, 1, 1]) for i in range(1, 101)])
with connection.cursor() as cur:
    cur.execute("SET enable_seqscan = off")
    cur.execute("EXPLAIN SELECT id FROM django_app_item ORDER BY embedding <-> '[50,0,1]' LIMIT 3")
    plan = "\n".join(r[0] for r in cur.fetchall())
near = Item.objects.order_by(L2Distance("embedding", [50, 0, 1]))[:3]
cosine = Item.objects.order_by(CosineDistance("embedding", [3, 3, 1]))[:1]
print(json.dumps({
    "near": [list(map(float, i.embedding)) for i in near],
    "cosine": [list(map(float, i.embedding)) for i in cosine],
    "half": list(map(float, Item.objects.get(embedding=[7, 2, 1]).half.to_list())),
    "plan": plan,
}))
