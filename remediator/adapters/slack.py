"""Slack's Web API through slack_sdk: post a message, update it in place.

slack_sdk is imported when a channel is first used, not with this module: only the functions that talk
to Slack pay for it at cold start.
"""

from __future__ import annotations

from typing import Any

DEFAULT_BASE_URL = "https://slack.com/api/"  # slack_sdk's WebClient.BASE_URL


class SlackUnavailable(RuntimeError):
    """Slack could not be reached or refused the call; nothing was posted."""


class SlackChannel:
    def __init__(self, token: str, channel: str, base_url: str | None = None, timeout: int = 5, retry: bool = True) -> None:
        """`retry=False` for callers with a deadline (Slack wants its callback answered within 3 s)."""
        from slack_sdk import WebClient

        client = WebClient(token=token, base_url=base_url or DEFAULT_BASE_URL, timeout=timeout)
        if not retry:
            client.retry_handlers = []  # slack_sdk retries a failed connection once by default
        self._client = client
        self.channel = channel

    def post(self, text: str, blocks: list[dict[str, Any]]) -> tuple[str, str]:
        """(channel ID, message ts) of the new message."""
        response = self._call("chat_postMessage", channel=self.channel, text=text, blocks=blocks)
        return str(response["channel"]), str(response["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self._call("chat_update", channel=channel, ts=ts, text=text, blocks=blocks)

    def _call(self, method: str, **kwargs: Any) -> Any:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return getattr(self._client, method)(**kwargs)
        except SlackApiError as error:
            raise SlackUnavailable(f"Slack refused {method}: {error.response.get('error')}") from None
        except (SlackClientError, OSError) as error:
            raise SlackUnavailable(f"Slack unreachable for {method}: {error}") from None
