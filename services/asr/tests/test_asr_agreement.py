"""LocalAgreement on scripted hypotheses (the real-audio run is in test_asr_model.py)."""

from __future__ import annotations

from habla_asr.agreement import LocalAgreement


def feed(*hypotheses: str) -> list[tuple[str, str]]:
    la = LocalAgreement()
    out = []
    for h in hypotheses:
        committed, tentative = la.update(h.split())
        out.append((" ".join(committed), " ".join(tentative)))
    return out


def test_first_hypothesis_is_all_tentative() -> None:
    assert feed("hola que tal") == [("", "hola que tal")]


def test_common_prefix_of_the_last_two_is_committed() -> None:
    steps = feed("se recomienda", "se recomienda enfáticamente a los vi", "se recomienda enfáticamente a los viajeros")
    assert steps == [
        ("", "se recomienda"),
        ("se recomienda", "enfáticamente a los vi"),
        ("se recomienda enfáticamente a los", "viajeros"),
    ]


def test_punctuation_and_case_changes_still_agree() -> None:
    steps = feed(
        "Esto parece tener sentido", "esto parece tener sentido, ya que", "Esto parece tener sentido. Ya que en"
    )
    assert steps[1] == ("esto parece tener sentido,", "ya que")  # as the newer hypothesis wrote it
    assert steps[2] == ("esto parece tener sentido, Ya que", "en")  # committed words stay


def test_committed_is_never_rewritten_when_a_later_hypothesis_disagrees() -> None:
    la = LocalAgreement()
    la.update(["cualquier", "rijo", "del", "clima"])
    committed, _ = la.update(["cualquier", "rijo", "del", "clima", "extremo"])
    assert committed == ("cualquier", "rijo", "del", "clima")
    # "rijo" is now heard as "riesgo": it stays committed as it was, and the words
    # after "del clima" go on agreeing ("extremo" is in both of the last two)
    committed, tentative = la.update(["cualquier", "riesgo", "del", "clima", "extremo", "en", "el", "área"])
    assert committed == ("cualquier", "rijo", "del", "clima", "extremo")
    assert tentative == ("en", "el", "área")
    committed, tentative = la.update(["cualquier", "riesgo", "del", "clima", "extremo", "en", "el", "área", "que"])
    assert committed == ("cualquier", "rijo", "del", "clima", "extremo", "en", "el", "área")
    assert tentative == ("que",)


def test_a_shorter_or_empty_hypothesis_never_shrinks_committed() -> None:
    la = LocalAgreement()
    la.update(["uno", "dos", "tres"])
    la.update(["uno", "dos", "tres", "cuatro"])
    assert la.update([]) == (("uno", "dos", "tres"), ())
    assert la.update(["uno"]) == (("uno", "dos", "tres"), ())
    assert la.committed == ("uno", "dos", "tres")


def test_finish_commits_the_rest_of_the_last_hypothesis() -> None:
    la = LocalAgreement()
    la.update(["hasta", "luego"])
    la.update(["hasta", "luego", "amigos"])
    assert la.finish() == (("hasta", "luego", "amigos"), ())


def test_committed_prefix_property_over_many_random_hypotheses() -> None:
    import random

    rng = random.Random(7)
    vocab = ["el", "la", "de", "que", "y", "en", "a", "los", "se", "del"]
    la = LocalAgreement()
    truth = [rng.choice(vocab) for _ in range(40)]
    history: list[tuple[str, ...]] = []
    for n in range(1, 41):
        hyp = list(truth[:n])
        if rng.random() < 0.4 and n > 2:  # the model changes its mind about a word
            hyp[rng.randrange(n)] = rng.choice(vocab)
        committed, _ = la.update(hyp)
        if history:
            assert committed[: len(history[-1])] == history[-1]
        history.append(committed)
