# As `makemigrations` writes it, with pgvector's VectorExtension() added
# first, as pgvector-python's README says to.
import pgvector.django
from django.db import migrations, models
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        VectorExtension(),
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("embedding", pgvector.django.VectorField(dimensions=3)),
                ("half", pgvector.django.HalfVectorField(dimensions=3, null=True)),
            ],
        ),
        migrations.AddIndex(
            model_name="item",
            index=pgvector.django.HnswIndex(ef_construction=64, fields=["embedding"], m=16,
                                            name="item_embedding_hnsw", opclasses=["vector_l2_ops"]),
        ),
        migrations.AddIndex(
            model_name="item",
            index=pgvector.django.IvfflatIndex(fields=["embedding"], lists=2, name="item_embedding_ivf",
                                               opclasses=["vector_cosine_ops"]),
        ),
    ]
