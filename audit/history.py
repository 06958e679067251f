"""django-simple-history plumbing: every historical row records the acting user or API key."""

from django.db import models
from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record

from .actors import current_actor


class HistoricalActorFields(models.Model):
    """Extra columns of every historical table: the actor as `kind:id`, beside history_user."""

    history_actor = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        abstract = True


@receiver(pre_create_historical_record)
def stamp_history_actor(sender, instance, history_instance, **kwargs):
    actor = current_actor()
    if actor is None:
        return
    history_instance.history_actor = str(actor)
    if actor.user_id is not None:
        history_instance.history_user_id = actor.user_id


def tracked_history(**kwargs):
    """HistoricalRecords configured the Zentra way (actor column, text change reason)."""
    from simple_history.models import HistoricalRecords

    return HistoricalRecords(bases=[HistoricalActorFields], **kwargs)
