from django.db import models
from pgvector.django import HnswIndex, HalfVectorField, IvfflatIndex, VectorField


class Item(models.Model):
    embedding = VectorField(dimensions=3)
    half = HalfVectorField(dimensions=3, null=True)

    class Meta:
        app_label = "django_app"
        indexes = [
            HnswIndex(name="item_embedding_hnsw", fields=["embedding"], m=16, ef_construction=64,
                      opclasses=["vector_l2_ops"]),
            IvfflatIndex(name="item_embedding_ivf", fields=["embedding"], lists=2,
                         opclasses=["vector_cosine_ops"]),
        ]
