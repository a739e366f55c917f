"""Spots: body map regions, create/update/delete through the services, filing checks, timeline and due dates."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from classifier.models import Prediction
from classifier.services.prediction_writes import prediction_create
from spots import body_map
from spots.models import Spot
from spots.selectors import add_months, spot_checks, spot_due_on, spot_timeline
from spots.services import prediction_move_to_spot, spot_create, spot_delete, spot_resolve_for_user, spot_update
from tests.classifier.page_helpers import lesion_jpeg
from tests.conftest import media_files, row_files, stored_names


@pytest.mark.parametrize(
    ("view", "x", "y", "region"),
    [
        ("front", 0.5, 0.05, "head_neck"),
        ("front", 0.5, 0.3, "trunk"),
        ("back", 0.5, 0.3, "trunk"),
        ("front", 0.15, 0.4, "upper_extremity"),
        ("front", 0.1, 0.5, "palms_soles"),
        ("back", 0.1, 0.5, "upper_extremity"),
        ("front", 0.4, 0.75, "lower_extremity"),
        ("back", 0.4, 0.96, "palms_soles"),
        ("front", 0.5, 0.5, "oral_genital"),
    ],
)
def test_region_for_points_on_the_map(view, x, y, region):
    assert body_map.region_for(view=view, x=x, y=y) == region
    assert region in Prediction.BodySite.values


@pytest.mark.parametrize("region", [value for value in Prediction.BodySite.values if value != "unknown"])
def test_every_region_has_a_point_inside_it_for_the_dropdown_fallback(region):
    view, x, y = body_map.point_for_region(region)
    assert body_map.region_for(view=view, x=x, y=y) == region


def test_unknown_region_has_no_point():
    assert body_map.point_for_region("unknown") is None
    assert body_map.point_for_region("") is None


@pytest.mark.parametrize(("view", "x", "y"), [("side", 0.5, 0.5), ("front", 1.5, 0.5), ("back", 0.5, -0.1)])
def test_region_for_refuses_points_off_the_map(view, x, y):
    with pytest.raises(ValueError, match="view|outside"):
        body_map.region_for(view=view, x=x, y=y)


def test_add_months_clamps_to_the_end_of_the_month():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 11, 15), 3) == dt.date(2027, 2, 15)


def test_spot_create_derives_the_region_and_checks_the_name(alice):
    spot = spot_create(user=alice, name="  mole left shoulder ", view="back", x=0.36, y=0.25)
    assert (spot.name, spot.region) == ("mole left shoulder", "trunk")
    with pytest.raises(ValidationError) as error:
        spot_create(user=alice, name=" ", x=0.5, y=0.5)
    assert "name" in error.value.message_dict
    with pytest.raises(ValidationError):
        spot_create(user=alice, name="x", x=2.0, y=0.5)
    with pytest.raises(ValidationError):
        spot_create(user=alice, name="x", recheck_months=2)
    assert Spot.objects.count() == 1


def test_a_check_filed_under_a_spot_takes_its_region_and_symptoms(alice, private_media):
    spot = spot_create(user=alice, name="arm", view="front", x=0.15, y=0.4)
    check = prediction_create(
        user=alice, upload=lesion_jpeg(), body_site="trunk", spot=spot, symptoms=["bleeding", "changed_size"]
    )
    assert (check.spot, check.body_site) == (spot, "upper_extremity")
    assert (check.bleeding, check.changed_size, check.itching) == (True, True, False)
    assert check.symptoms == ["it has grown or changed shape", "it bleeds or crusts"]


def test_someone_elses_spot_is_refused_and_nothing_is_saved(alice, bob, private_media):
    bobs = spot_create(user=bob, name="bob's", x=0.5, y=0.3)
    with pytest.raises(ValidationError):
        prediction_create(user=alice, upload=lesion_jpeg(), spot=bobs)
    with pytest.raises(ValidationError) as other:
        spot_resolve_for_user(user=alice, spot_id=bobs.pk)
    with pytest.raises(ValidationError) as missing:
        spot_resolve_for_user(user=alice, spot_id=999999)
    assert other.value.messages == missing.value.messages  # nothing tells the two apart
    assert Prediction.objects.count() == 0
    assert media_files(private_media) == []


def test_unknown_symptom_is_refused(alice, private_media):
    with pytest.raises(ValidationError):
        prediction_create(user=alice, upload=lesion_jpeg(), symptoms=["glowing"])
    assert Prediction.objects.count() == 0


def test_moving_a_check_to_another_spot(alice, bob, spot_with_checks):
    spot, older, _ = spot_with_checks
    arm = spot_create(user=alice, name="arm", view="front", x=0.15, y=0.4)
    prediction_move_to_spot(prediction=older, spot=arm)
    older.refresh_from_db()
    assert (older.spot, older.body_site) == (arm, "upper_extremity")
    with pytest.raises(ValidationError):
        prediction_move_to_spot(prediction=older, spot=spot_create(user=bob, name="b", x=0.5, y=0.3))
    prediction_move_to_spot(prediction=older, spot=None)
    older.refresh_from_db()
    assert older.spot is None


def test_moving_the_spot_moves_its_checks_region(spot_with_checks):
    spot, older, newer = spot_with_checks
    spot_update(spot=spot, view="front", x=0.4, y=0.75)
    assert set(spot.predictions.values_list("body_site", flat=True)) == {"lower_extremity"}


def test_deleting_a_spot_deletes_its_checks_and_their_files(
    alice, spot_with_checks, private_media, django_capture_on_commit_callbacks
):
    spot, *_ = spot_with_checks
    unfiled = prediction_create(user=alice, upload=lesion_jpeg())
    with django_capture_on_commit_callbacks(execute=True):
        assert spot_delete(spot=spot) == 2
    assert list(Prediction.objects.values_list("pk", flat=True)) == [unfiled.pk]
    assert stored_names(private_media) == row_files(unfiled) == {unfiled.image.name}  # only the unfiled photo


def test_timeline_flags_a_higher_risk_and_ticked_changes(spot_with_checks):
    spot, older, newer = spot_with_checks
    timeline = spot_timeline(checks=spot_checks(spot=spot))
    assert [entry.check for entry in timeline] == [newer, older]  # newest first
    assert (timeline[0].changed, timeline[0].risk_went_up) == (True, True)
    assert timeline[1].changed is False


def test_timeline_without_a_change_is_not_flagged(alice, private_media):
    from tests.spots.conftest import finish

    spot = spot_create(user=alice, name="calm", x=0.5, y=0.3)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    for days in (60, 30):
        finish(
            prediction_create(user=alice, upload=lesion_jpeg(), spot=spot),
            verdict="refer",
            probability=0.5,
            when=now - dt.timedelta(days=days),
        )
    assert [entry.changed for entry in spot_timeline(checks=spot_checks(spot=spot))] == [False, False]


def test_due_date_follows_the_latest_check(spot_with_checks):
    spot, _, newer = spot_with_checks
    from spots.selectors import spot_get_for_user

    annotated = spot_get_for_user(user=spot.user, pk=spot.pk)
    assert spot_due_on(spot=annotated) == add_months(newer.created_at.date(), 1)
    spot_update(spot=spot, recheck_months=0)
    assert spot_due_on(spot=spot_get_for_user(user=spot.user, pk=spot.pk)) is None


def test_symptom_labels_are_the_questions_and_only_symptoms_have_one():
    assert [Prediction.symptom_label(name) for name in Prediction.SYMPTOM_FIELDS] == [
        str(Prediction._meta.get_field(name).verbose_name) for name in Prediction.SYMPTOM_FIELDS
    ]
    with pytest.raises(ValueError, match="not a symptom"):
        Prediction.symptom_label("note")
