"""The Gradio pages: the full chat (with the 附件目录 browser) at "/" and the compact widget at "/widget".

Both wrap the library API only: `assistant.stream(question, history)` for answers and `assistant.corpus` for the
annex table. Everything users or the model write is shown as text: it is escaped before it reaches the Chatbot,
whose Markdown renderer would otherwise turn `<img onerror=…>` into markup."""
from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pandas as pd

from assistant.config import Config
from assistant.feedback import FeedbackStore
from assistant.normalize import MAX_QUESTION_CHARS, InputError, normalize, validate_question
from assistant.records import BATCH_1, BATCH_2, BATCH_LICENSED, Answer, AnnexRow, Turn

log = logging.getLogger(__name__)

TITLE = "职业资格退出目录政策问答"
DOC = "人社厅发〔2020〕80号"
EXAMPLES = [
    "电工证什么时候退出目录？",
    "美容师是第几批？",
    "第一批有哪些？",
    "退出目录前发的证书还有效吗？",
    "国家中医药管理局负责哪些职业？",
]
WIDGET_EXAMPLES = EXAMPLES[:3]
MAX_HISTORY_TURNS = 20  # the last 10 exchanges are enough to resolve a follow-up
ANSWER_ERROR = "抱歉，处理这个问题时出错了，请稍后再试。"

ALL = "全部"
BATCH_CHOICES = [ALL, "第一批", "第二批", "拟依法调整为准入类职业资格"]
_BATCH_OF_WORDS = {"第一批": BATCH_1, "第二批": BATCH_2, "拟依法调整为准入类职业资格": BATCH_LICENSED}
ANNEX_HEADERS = ["序号", "职业资格名称", "职业（工种）", "实施部门（单位）", "批次", "退出时间"]

# The Chatbot renders Markdown and lets "safe" HTML through. To show text as typed, the characters that can start
# markup become numeric character references: always for tags, entities, emphasis, code, links, images, tables and
# autolinks; at the start of a line for lists, headings and rules. Other punctuation stays as it is, so that the
# copy button and screen readers get readable text.
_ALWAYS = {ord(ch): f"&#{ord(ch)};" for ch in "&<>\\`*_[]!|~#@:"}
_LINE_START = re.compile(r"^(\s*)(\d+[.)]|[-+=>])", re.M)
_WWW = re.compile(r"(?i)\b(www)\.")

CSS = """
.pna-header h1 { margin-bottom: 0.2em; }
.pna-header p { color: var(--body-text-color-subdued); margin-top: 0; }
.pna-examples button { flex: 0 1 auto !important; min-width: 0 !important; }
.pna-footer { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
"""
WIDGET_CSS = """
.gradio-container { padding: 0 !important; max-width: 100% !important; }
.gradio-container .app { padding: 6px 8px !important; }
.pna-widget-row { gap: 6px !important; }
.pna-widget-row button { min-width: 0 !important; }
#pna-chatbot .message-row.bubble { max-width: calc(100% - 12px) !important; }
#pna-chatbot .examples .example { border: 1px solid var(--border-color-primary); border-radius: 8px;
  background: var(--background-fill-secondary); }
"""
SANS = ["system-ui", "-apple-system", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "sans-serif"]
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
HEAD = '<meta name="description" content="人社厅发〔2020〕80号 水平评价类技能人员职业资格退出目录 政策问答">' \
       '<script>document.documentElement.lang = "zh-CN";</script>'


def as_text(text: str) -> str:
    """`text` for the Chatbot's Markdown renderer so that it displays literally and runs nothing."""
    out = (text or "").translate(_ALWAYS)
    out = _LINE_START.sub(lambda m: m.group(1) + "".join(f"&#{ord(c)};" for c in m.group(2)), out)
    return _WWW.sub(r"\1&#46;", out)


def sources_message(answer: Answer) -> dict:
    """The citations as one collapsible assistant message: the labels in its title, the quotes inside."""
    labels = "、".join(c.label for c in answer.citations)
    blocks = []
    for c in answer.citations:
        lines = [as_text(line.strip()) for line in (c.quote or "").splitlines() if line.strip()]
        blocks.append(f"**{as_text(c.label)}**\n" + ("\n".join(lines) or "（无引文）"))
    return {
        "role": "assistant",
        "content": "\n\n".join(blocks),
        # The title is rendered as Markdown too, so it is escaped like everything else.
        "metadata": {"title": as_text(f"出处（{len(answer.citations)}）：{labels}"), "status": "done"},
    }


def plain_copy(answer: Answer) -> str:
    """The answer with its sources as plain text, for a helpdesk agent to paste into a reply."""
    lines = [answer.answer]
    if answer.citations:
        lines += ["", f"依据（{DOC}）："]
        for c in answer.citations:
            quote = " ".join((c.quote or "").split())
            lines.append(f"【{c.label}】{quote}")
    return "\n".join(lines)


class ChatSession:
    """The chat logic shared by the full page and the widget; the UI state lives in gr.State values."""

    def __init__(self, assistant, store: FeedbackStore | None, channel: str) -> None:
        self.assistant = assistant
        self.store = store
        self.channel = channel

    # -- answering -------------------------------------------------------------------------------

    def respond(self, message: str, chat: list, turns: list, records: list, plain: str) -> Iterator[tuple]:
        """Stream one answer into the chat: the user's message, token deltas, the final answer, its sources."""
        chat, turns, records = list(chat or []), list(turns or []), list(records or [])
        question = message if isinstance(message, str) else ""
        try:
            validate_question(question)
        except InputError as exc:
            gr.Warning("请输入问题。" if "empty" in str(exc) else f"问题太长了（最多{MAX_QUESTION_CHARS}字）。")
            yield chat, message, turns, records, plain
            return
        chat.append({"role": "user", "content": as_text(question)})
        chat.append({"role": "assistant", "content": "…"})
        yield chat, "", turns, records, plain

        history = [Turn.model_validate(t) for t in turns[-MAX_HISTORY_TURNS:]]
        text, answer, notice = "", None, ""
        try:
            for event in self.assistant.stream(question, history):
                if event.kind == "token":
                    text += event.text
                    chat[-1] = {"role": "assistant", "content": as_text(text)}
                    yield chat, "", turns, records, plain
                elif event.kind == "notice":  # the generated text is being replaced by the offline answer
                    notice, text = event.text, ""
                elif event.kind == "answer":
                    answer = event.answer
        except Exception:  # the page stays usable; the log has the details
            log.exception("answering %r failed", question)
            answer = None
        if answer is None:
            chat[-1] = {"role": "assistant", "content": as_text(ANSWER_ERROR)}
            yield chat, "", turns, records, plain
            return

        chat[-1] = {"role": "assistant", "content": as_text(answer.answer)}  # the final text is authoritative
        indices = [len(chat) - 1]
        if answer.citations:
            chat.append(sources_message(answer))
            indices.append(len(chat) - 1)
        if answer.fallback_reason:
            gr.Info(notice or "生成模型暂不可用，以下为依据通知原文整理的回答。")
        turns = (turns + [{"role": "user", "content": question},
                          {"role": "assistant", "content": answer.answer}])[-MAX_HISTORY_TURNS:]
        records.append({"indices": indices, "answer": answer.to_dict(), "feedback_id": None})
        yield chat, "", turns, records, plain_copy(answer)

    @staticmethod
    def pick_example(evt: gr.SelectData) -> str:
        value = evt.value
        return value.get("text", "") if isinstance(value, dict) else str(value or "")

    @staticmethod
    def reset() -> tuple:
        return [], "", [], [], "", None, gr.update(visible=False), "", ""

    # -- feedback --------------------------------------------------------------------------------

    def like(self, records: list, target: int | None, evt: gr.LikeData) -> tuple:
        """👍/👎 on an answer (or its sources): stored at once; a comment box opens for an optional note.

        Returns (records, feedback row the comment box is for, box, note, comment)."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        record = next((r for r in records or [] if index in r["indices"]), None)
        if record is None or evt.liked not in (True, False):
            return records, target, gr.update(), gr.update(), gr.update()
        rating = "up" if evt.liked else "down"
        if self.store is None:
            return records, None, gr.update(visible=False), gr.update(), ""
        answer = record["answer"]
        try:
            if record.get("feedback_id"):
                self.store.update(record["feedback_id"], rating=rating)
            else:
                record["feedback_id"] = self.store.add(
                    question=answer["question"], answer=answer["answer"], citations=answer["citations"],
                    rating=rating, answer_id=answer.get("id"), mode=answer.get("mode"), channel=self.channel)
        except Exception:
            log.exception("storing feedback failed")
            gr.Warning("反馈保存失败，请稍后再试。")
            return records, target, gr.update(), gr.update(), gr.update()
        thanks = "感谢点赞！" if rating == "up" else "感谢反馈，我们会改进。"
        note = f"{thanks}可以补充说明（可选）："
        return records, record["feedback_id"], gr.update(visible=True), note, ""

    def comment(self, target: int | None, text: str) -> tuple:
        """The optional note for the answer rated last."""
        if not target or self.store is None:
            return gr.update(), "请先对某条回答点赞或点踩。"
        text = (text or "").strip()
        if not text:
            return gr.update(visible=False), "已记录您的评价。"
        try:
            self.store.set_comment(target, text[:2000])
        except Exception:
            log.exception("storing a feedback comment failed")
            return gr.update(), "补充说明保存失败，请稍后再试。"
        return gr.update(visible=False), "已收到您的补充说明，谢谢！"


def _wire(session: ChatSession, chatbot: gr.Chatbot, msg: gr.Textbox, send: gr.Button, new: gr.Button | None,
          plain: gr.Textbox, fb_box, fb_note, fb_comment, fb_send, fb_status,
          example_buttons: list[tuple[gr.Button, str]]) -> None:
    turns = gr.State([])  # [{"role", "content"}] as asked and answered, unescaped
    records = gr.State([])  # per answer: its chat message indices, Answer.to_dict(), its feedback row
    target = gr.State(None)  # the feedback row the comment box is for
    io_in = [msg, chatbot, turns, records, plain]
    io_out = [chatbot, msg, turns, records, plain]
    for trigger in (msg.submit, send.click):
        trigger(session.respond, io_in, io_out, api_visibility="private")
    for button, question in example_buttons:
        button.click(lambda q=question: q, None, msg, queue=False, api_visibility="private").then(
            session.respond, io_in, io_out, api_visibility="private")
    chatbot.example_select(session.pick_example, None, msg, queue=False, api_visibility="private").then(
        session.respond, io_in, io_out, api_visibility="private")
    resets = [chatbot, msg, turns, records, plain, target, fb_box, fb_status, fb_comment]
    if new is not None:
        new.click(session.reset, None, resets, queue=False, api_visibility="private")
    chatbot.clear(session.reset, None, resets, queue=False, api_visibility="private")
    chatbot.like(session.like, [records, target], [records, target, fb_box, fb_note, fb_comment],
                 api_visibility="private")
    for trigger in (fb_send.click, fb_comment.submit):
        trigger(session.comment, [target, fb_comment], [fb_box, fb_status], api_visibility="private")


def _chatbot(height: int | str, placeholder: str, layout: str = "bubble", **kwargs) -> gr.Chatbot:
    return gr.Chatbot(
        label="对话", show_label=False, height=height, placeholder=placeholder,
        render_markdown=True, sanitize_html=True, allow_tags=False, latex_delimiters=[],
        feedback_options=("Like", "Dislike"), buttons=["copy"], autoscroll=True, layout=layout,
        elem_id="pna-chatbot", **kwargs)


def _feedback_box():
    with gr.Group(visible=False, elem_id="pna-feedback") as box:
        note = gr.Markdown("")
        comment = gr.Textbox(show_label=False, placeholder="例如：哪里不对、希望补充什么（可选）", lines=2,
                             max_length=2000)
        send = gr.Button("提交说明", size="sm")
    status = gr.Markdown("", elem_id="pna-feedback-status")
    return box, note, comment, send, status


# ---- the annex browser ----------------------------------------------------------------------------

def _annex_frame(rows: list[AnnexRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [[r.item, r.qualification, r.occupation, r.departments_text(), r.batch_words, r.deadline or "—"]
         for r in rows],
        columns=ANNEX_HEADERS,
    )


def filter_annex(rows: tuple[AnnexRow, ...], keyword: str = "", batch: str = ALL, department: str = ALL
                 ) -> list[AnnexRow]:
    """Rows matching all of: a keyword (in 序号, names or departments; 繁体/全角 allowed), a batch, a department."""
    words = normalize(keyword or "").split()
    want_batch = _BATCH_OF_WORDS.get(batch)
    out = []
    for r in rows:
        if want_batch and r.batch != want_batch:
            continue
        if department and department != ALL and department not in r.departments:
            continue
        hay = f"{r.item} 第{r.item}项 {r.qualification} {r.occupation} {r.departments_text()} {r.batch_words}"
        if all((w in hay) or (w.isdigit() and int(w) == r.item) for w in words):
            out.append(r)
    return out


def annex_summary(rows: tuple[AnnexRow, ...]) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    items = len({r.item for r in rows})
    intro = (f"附件《水平评价类技能人员职业资格退出目录安排》共 **{items}** 项职业资格、**{len(rows)}** 行职业（工种）。"
             "批次以附件所列为准：第一批拟于2020年9月30日前退出，第二批拟于2020年12月31日前退出。")
    by_batch = []
    for words, code in _BATCH_OF_WORDS.items():
        batch_rows = [r for r in rows if r.batch == code]
        by_batch.append([words, len({r.item for r in batch_rows}), len(batch_rows),
                         batch_rows[0].deadline or "—" if batch_rows else "—"])
    batch_df = pd.DataFrame(by_batch, columns=["批次", "涉及项数", "职业行数", "退出时间"])
    counts = Counter(d for r in rows for d in r.departments)
    dept_df = pd.DataFrame(
        [[d, len({r.item for r in rows if d in r.departments}), n] for d, n in counts.most_common()],
        columns=["实施部门（单位）", "涉及项数", "职业行数"])
    return intro, batch_df, dept_df


def _annex_tab(assistant) -> None:
    rows = assistant.corpus.annex_rows
    intro, batch_df, dept_df = annex_summary(rows)
    counts = Counter(d for r in rows for d in r.departments)
    dept_choices = [(ALL, ALL)] + [(f"{d}（{n}）", d) for d, n in sorted(counts.items(), key=lambda x: -x[1])]

    gr.Markdown(intro)
    with gr.Row():
        keyword = gr.Textbox(label="关键词", placeholder="职业、职业资格名称、部门或序号，如：电工", scale=3,
                             elem_id="pna-annex-keyword")
        batch = gr.Dropdown(BATCH_CHOICES, value=ALL, label="批次", scale=2, elem_id="pna-annex-batch")
        department = gr.Dropdown(dept_choices, value=ALL, label="实施部门", scale=2, elem_id="pna-annex-dept")
        reset = gr.Button("重置", scale=1, size="sm")
    shown = gr.Markdown(f"显示 {len(rows)} / {len(rows)} 行", elem_id="pna-annex-count")
    table = gr.Dataframe(_annex_frame(list(rows)), interactive=False, wrap=True, max_height=560,
                         column_widths=["6%", "20%", "17%", "29%", "13%", "15%"], datatype="str",
                         buttons=["copy", "fullscreen"], elem_id="pna-annex-table", show_label=False)
    with gr.Accordion("统计：按批次、按实施部门", open=True):
        with gr.Row():
            gr.Dataframe(batch_df, interactive=False, show_label=False, elem_id="pna-annex-by-batch")
            gr.Dataframe(dept_df, interactive=False, show_label=False, max_height=1000,
                         elem_id="pna-annex-by-dept")

    def update(kw: str, b: str, d: str):
        found = filter_annex(rows, kw, b, d)
        note = f"显示 {len(found)} / {len(rows)} 行" + ("" if found else "：没有符合条件的职业，请换个关键词或放宽筛选。")
        return _annex_frame(found), note

    for control in (keyword.change, batch.change, department.change):
        control(update, [keyword, batch, department], [table, shown], queue=False, api_visibility="private",
                trigger_mode="always_last")
    reset.click(lambda: ("", ALL, ALL), None, [keyword, batch, department], queue=False, api_visibility="private")


# ---- the pages ------------------------------------------------------------------------------------

def _store(config: Config, store: FeedbackStore | None) -> FeedbackStore | None:
    if store is not None:
        return store
    try:
        return FeedbackStore(config.feedback_db)
    except Exception:  # a read-only disk must not take the chat down; ratings are then not offered
        log.exception("feedback store at %s unavailable", config.feedback_db)
        return None


def build_chat(assistant, config: Config, store: FeedbackStore | None = None) -> gr.Blocks:
    """The full page: 智能问答 (streaming chat with sources and feedback) and 附件目录 (annex browser)."""
    session = ChatSession(assistant, _store(config, store), channel="chat")
    with gr.Blocks(title=f"{TITLE} · {DOC}", fill_width=False, analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\n依据{DOC}《{assistant.corpus.header.title}》及附件作答，每条回答附原文出处。",
                    elem_classes=["pna-header"])
        with gr.Tabs():
            with gr.Tab("智能问答", id="chat"):
                chatbot = _chatbot(540, "**您好！** 请输入关于职业资格退出目录的问题，或点击下方的常见问题。")
                with gr.Row(equal_height=True):
                    msg = gr.Textbox(show_label=False, placeholder="请输入问题，例如：电工证什么时候退出目录？",
                                     max_length=MAX_QUESTION_CHARS, scale=8, autofocus=True, elem_id="pna-question")
                    send = gr.Button("发送", variant="primary", scale=1, min_width=80, elem_id="pna-send")
                    new = gr.Button("新对话", scale=1, min_width=80, elem_id="pna-new")
                gr.Markdown("**常见问题**（点击即问）：")
                with gr.Row(elem_classes=["pna-examples"]):
                    example_buttons = [(gr.Button(q, size="sm", variant="secondary"), q) for q in EXAMPLES]
                fb_box, fb_note, fb_comment, fb_send, fb_status = _feedback_box()
                with gr.Accordion("复制回答（含出处，纯文本）", open=False):
                    plain = gr.Textbox(show_label=False, lines=6, interactive=False, buttons=["copy"],
                                       placeholder="最近一条回答会出现在这里，可一键复制。", elem_id="pna-plain")
            with gr.Tab("附件目录", id="annex"):
                _annex_tab(assistant)
        gr.Markdown("回答只依据通知原文；如需办理具体业务，请以当地人力资源社会保障部门的答复为准。"
                    "　[HTTP API 文档](/docs)", elem_classes=["pna-footer"])
        _wire(session, chatbot, msg, send, new, plain, fb_box, fb_note, fb_comment, fb_send, fb_status,
              example_buttons)
    demo.queue(default_concurrency_limit=8)
    return demo


def build_widget(assistant, config: Config, store: FeedbackStore | None = None) -> gr.Blocks:
    """The compact chat for a small floating panel (about 380×600 px) on another site.

    No page title (the panel around it has one); example questions sit inside the empty chat; the chat's own
    trash button starts a new conversation."""
    session = ChatSession(assistant, _store(config, store), channel="widget")
    with gr.Blocks(title=f"{TITLE}（小窗）", fill_height=True, analytics_enabled=False) as demo:
        chatbot = _chatbot("100%", "您好！请问关于职业资格退出目录的问题，回答会附原文出处。", min_height=240, scale=1,
                           examples=[{"text": q} for q in WIDGET_EXAMPLES])
        with gr.Row(equal_height=True, elem_classes=["pna-widget-row"]):
            msg = gr.Textbox(show_label=False, placeholder="输入问题…", max_length=MAX_QUESTION_CHARS, scale=5,
                             elem_id="pna-question", container=False)
            send = gr.Button("发送", variant="primary", scale=1, min_width=60, elem_id="pna-send")
        fb_box, fb_note, fb_comment, fb_send, fb_status = _feedback_box()
        plain = gr.Textbox(visible=False)
        _wire(session, chatbot, msg, send, None, plain, fb_box, fb_note, fb_comment, fb_send, fb_status, [])
    demo.queue(default_concurrency_limit=8)
    return demo


def mount_kwargs(widget: bool = False) -> dict[str, Any]:
    """What gradio 6 takes at mount time rather than in Blocks(): theme, CSS, <head>, footer."""
    return {
        # System fonts only: the default theme fonts come from Google Fonts, unreachable in some networks.
        "theme": gr.themes.Soft(primary_hue="blue", neutral_hue="slate", font=SANS, font_mono=MONO),
        "css": WIDGET_CSS if widget else CSS,
        "head": HEAD,
        "footer_links": [] if widget else ["settings"],
        "run_history": False,
        "ssr_mode": False,
        "show_error": False,
    }
