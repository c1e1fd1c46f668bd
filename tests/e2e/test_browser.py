"""The pages in a real browser (Debian's Chromium) against the whole app: watch, seek, count views."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, Response, expect

from tests.e2e.stack import MakeContext, RunningApp, get_json
from tests.harness import wait_until

VIDEO = "zoom.webm"  # the largest sample: a seek to its middle lands beyond what has been downloaded
# Seek to the middle, or past what is buffered when the download got there first (a loaded machine plays
# slowly while the emulated network keeps going), so the seek always needs a new range.
SEEK_TO_MIDDLE = """() => {
    const v = document.getElementById('video');
    const buffered = v.buffered.length ? v.buffered.end(v.buffered.length - 1) : 0;
    return (v.currentTime = Math.min(v.duration - 1, Math.max(v.duration / 2, buffered + 1)));
}"""
SLOW_NETWORK = 100_000  # bytes per second: faster than the video plays, slower than loopback


def wait_for_time(page: Page, seconds: float) -> None:
    """Wait until the video has played past `seconds`."""
    page.wait_for_function("(t) => document.getElementById('video').currentTime > t", arg=seconds)


def slow_down(page: Page) -> None:
    """Emulate a slow network, so the video is still downloading when the test seeks."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 20,
            "downloadThroughput": SLOW_NETWORK,
            "uploadThroughput": SLOW_NETWORK,
        },
    )


def range_start(response: Response) -> int | None:
    """The first byte of a 206 answer for the video, from its Content-Range."""
    found = re.fullmatch(r"bytes (\d+)-\d+/\d+", response.headers.get("content-range", ""))
    return int(found[1]) if response.status == 206 and found else None


def test_every_video_is_listed_with_its_size(app: RunningApp, page: Page) -> None:
    on_disk = {f.name: f.stat().st_size for f in app.videos_dir.iterdir() if not f.name.startswith(".")}
    assert len(on_disk) >= 2
    response = page.goto(f"{app.video_streaming}/")
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]  # only its own files
    expect(page.locator("#library")).to_have_attribute("data-state", "loaded")
    rows = page.locator("#library li")
    expect(rows).to_have_count(len(on_disk))
    for name, size in on_disk.items():
        row = rows.filter(has_text=name)
        expect(row.locator(".meta")).to_have_text(f"{size / 1000:.0f} KB")  # every sample is 10 KB to 1 MB
        expect(row.get_by_role("button", name=f"Play {name}")).to_be_visible()
    expect(page.get_by_role("status").first).to_have_text(re.compile("Ready: press play"))


def test_play_seek_and_count_views(app: RunningApp, page: Page, output_dir: Path) -> None:
    history_before, ranked_before = app.history_views(VIDEO), app.recommended_views(VIDEO)
    sent_before = app.views_sent()
    slow_down(page)
    page.goto(f"{app.video_streaming}/")

    # Start it from the keyboard: focus the video's Play button and press Enter.
    page.get_by_role("button", name=f"Play {VIDEO}").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#player")).to_have_attribute("data-state", "playing")
    expect(page.locator("#player [role=status]")).to_have_text(f"Playing {VIDEO}.")
    wait_for_time(page, 0.5)

    # Seek to the middle (or past the buffer): the browser asks for the bytes from there on, and gets them.
    with page.expect_response(lambda r: VIDEO in r.url and (range_start(r) or 0) > 0) as seeked:
        middle = page.evaluate(SEEK_TO_MIDDLE)
    size = (app.videos_dir / VIDEO).stat().st_size
    assert 0 < range_start(seeked.value) < size
    assert seeked.value.headers["content-range"].endswith(f"/{size}")
    wait_for_time(page, middle + 0.5)
    expect(page.locator("#player")).to_have_attribute("data-state", "playing")
    page.screenshot(path=output_dir / "playing.png", full_page=True)

    # Exactly one view of this playback reached history and recommendations.
    wait_until(lambda: app.settled(sent_before + 1), what="the view is stored")
    assert app.history_views(VIDEO) == history_before + 1
    assert app.recommended_views(VIDEO) == ranked_before + 1

    # Reload and play again: a second view.
    page.reload()
    page.get_by_role("button", name=f"Play {VIDEO}").click()
    expect(page.locator("#player")).to_have_attribute("data-state", "playing")
    wait_for_time(page, 0.5)
    wait_until(lambda: app.settled(sent_before + 2), what="the second view is stored")
    assert app.history_views(VIDEO) == history_before + 2
    assert app.recommended_views(VIDEO) == ranked_before + 2


def test_unknown_video_shows_the_error_state(app: RunningApp, page: Page) -> None:
    page.goto(f"{app.video_streaming}/?v=no-such-video.webm")
    expect(page.locator("#player")).to_have_attribute("data-state", "error")
    expect(page.locator("#player [role=alert]")).to_have_text(
        "There is no video called “no-such-video.webm”. Choose one from the list."
    )
    expect(page.locator("#video")).to_be_hidden()
    expect(page.locator("#library li")).not_to_have_count(0)  # the list is still there to choose from


def test_no_videos_then_one_that_cannot_play(lone_player: tuple[str, Path], page: Page) -> None:
    url, videos = lone_player
    page.goto(f"{url}/")
    expect(page.locator("#library")).to_have_attribute("data-state", "empty")
    expect(page.locator("#library [role=status]")).to_have_text(re.compile("^No videos yet"))
    expect(page.locator("#video")).to_be_hidden()

    (videos / "broken.webm").write_bytes(b"this is not a video\n" * 64)
    page.reload()
    page.get_by_role("button", name="Play broken.webm").click()
    expect(page.locator("#player")).to_have_attribute("data-state", "error")
    expect(page.locator("#player [role=alert]")).to_have_text(
        "Your browser cannot play “broken.webm”: its format is not supported."
    )
    expect(page.locator("#video")).to_be_hidden()


def test_history_and_recommendations_pages_list_the_views(app: RunningApp, page: Page) -> None:
    sent = app.views_sent()
    for name in ("sample.mp4", "testcard.webm", "sample.mp4"):  # a GET without Range: one view each
        with urllib.request.urlopen(f"{app.video_streaming}/video?path={name}", timeout=10) as response:
            response.read()
    wait_until(lambda: app.settled(sent + 3), what="the views are stored")

    history = get_json(f"{app.history}/history?limit=1000")["history"]
    page.goto(f"{app.history}/?limit=2")
    rows = page.locator("#views li")
    expect(rows.locator(".name")).to_have_text([view["videoPath"] for view in history[:2]])
    expect(rows.locator("time").first).to_have_attribute("datetime", history[0]["viewedAt"])
    expect(page.get_by_role("button", name="Newer views")).to_be_disabled()
    page.get_by_role("button", name="Older views").click()
    expect(rows.locator(".name")).to_have_text([view["videoPath"] for view in history[2:4]])
    expect(page.locator("#views [role=status]")).to_have_text("Views 3 to 4.")
    page.get_by_role("button", name="Newer views").click()
    expect(rows.locator(".name")).to_have_text([view["videoPath"] for view in history[:2]])

    ranking = get_json(f"{app.recommendations}/recommendations?limit=20")["recommendations"]
    page.goto(f"{app.recommendations}/")
    rows = page.locator("#ranking li")
    expect(rows.locator(".name")).to_have_text([video["videoPath"] for video in ranking])
    expect(rows.locator(".meta")).to_have_text(
        [f"{video['views']} view{'' if video['views'] == 1 else 's'}" for video in ranking]
    )


@pytest.mark.parametrize("service", ["video_streaming", "history", "recommendations"])
def test_pages_fit_a_phone_screen(
    app: RunningApp, make_context: MakeContext, service: str, output_dir: Path
) -> None:
    phone = make_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(f"{getattr(app, service)}/")
    expect(page.locator("section[data-state]").last).not_to_have_attribute("data-state", "loading")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    page.screenshot(path=output_dir / "phone.png", full_page=True)
