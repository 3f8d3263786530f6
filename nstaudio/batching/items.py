"""What a batch is made of: its items, found from files, directories and manifests.

An item is one content file, its style files (or model), its settings and its output path
under the output directory. Everything about the batch's definition that is wrong (an
unknown manifest column, a number that is not one, two items writing one output, an output
that is an input) is found here, before any work; what is wrong with one item's files
(missing, not audio, too short) is that item's failure, found when it runs.
"""

import csv
import io
import os
import posixpath
from dataclasses import dataclass, field

from .. import audio, storage
from ..api import manifest_columns
from ..errors import AudioError, ParameterError
from ..files import TEMP_PREFIX
from ..jobs import settings_hash

MANIFEST_EXTENSIONS = (".csv",)
_FLOAT, _INT, _TEXT = float, int, str
FILE_COLUMNS = ("content", "style", "style_weights", "model", "output")


@dataclass(frozen=True)
class Item:
    """One job of a batch.

    Attributes
    ----------
    content : str
        The content file (an absolute path or a URL).
    output : str
        Where its output goes (an absolute path or a URL).
    key : str
        The output's path relative to the output directory: the item's name in the results file.
    styles : tuple of str
        Style files (empty with a model), absolute paths or URLs.
    model : str or None
        A model file (an absolute path or a URL).
    options : dict
        :func:`nstaudio.stylize`'s settings for this item (``method``, ``style_weights`` among them).
    """

    content: str
    output: str
    key: str
    styles: tuple = ()
    model: str = None
    options: dict = field(default_factory=dict)

    @property
    def settings(self):
        """:func:`nstaudio.jobs.settings_hash` of the item, with its files as they are now."""
        return settings_hash(self.content, self.styles, self.model, self.options)


def collect(inputs, outdir, *, styles=(), model=None, options=None):
    """The items of a batch, in order, with their output paths under ``outdir``.

    Parameters
    ----------
    inputs : sequence of str
        Content files, directories (searched recursively for audio, ``outdir`` left out) and
        manifests, local or fsspec URLs (:mod:`nstaudio.storage`); (``.csv``: a header row with ``content`` and any of ``style`` (several
        separated by ``;``), ``style_weights`` (``;``-separated), ``model``, ``output`` and
        the settings of :func:`setting_columns`; empty cells take the batch's value; relative
        paths are the manifest's directory's, outputs ``outdir``'s).
    outdir : str
        A local directory or a URL.
    styles : sequence of str
        Style files for every item that does not name its own.
    model : str or None
        A model for every item that names no styles or model of its own.
    options : dict or None
        :func:`nstaudio.stylize`'s settings for every item; a manifest's cells override them.

    Returns
    -------
    list of Item

    Raises
    ------
    ParameterError, AudioError
        A missing input, a directory without audio, a malformed manifest, a style in
        ``styles`` that is not a readable audio file, an item without style or model, two
        items with one output, or an output that is one of the inputs.
    """
    # Absolute paths: workers elsewhere (an existing cluster) have working directories of their own.
    outdir = storage.absolute(os.fspath(outdir))
    styles = [storage.absolute(os.fspath(path)) for path in styles]
    for path in styles:  # the batch's own styles serve every item: a bad one stops it before any work
        check_audio_file(path)
    model = None if model is None else storage.absolute(os.fspath(model))
    options = dict(options or {})
    items = []
    for path in inputs:
        path = os.fspath(path)
        if storage.isdir(path):
            for file in _audio_files(path, outdir):
                items.append(_item(file, _relative(file, path), outdir, styles, model, options))
        elif path.lower().endswith(MANIFEST_EXTENSIONS):
            items.extend(_manifest_items(path, outdir, styles, model, options))
        elif storage.exists(path):
            items.append(_item(path, _basename(path), outdir, styles, model, options))
        else:
            raise ParameterError(f"{path}: no such file or directory")
    if not items:
        raise ParameterError("nothing to do: no content files among the inputs")
    _check_outputs(items)
    return items


def check_audio_file(path):
    """:func:`nstaudio.audio.check_audio_file` of a local path or a URL (a copy of it, fetched here)."""
    with storage.local_copy(path) as local:
        audio.check_audio_file(local)


def _audio_files(directory, outdir):
    """The audio files under ``directory``, less unfinished temporary files and, where ``outdir`` is
    inside it, those under ``outdir`` (a batch's own outputs are not its inputs when it runs again)."""
    real_directory, real_outdir = storage.canonical(directory), storage.canonical(outdir)
    if real_directory.rstrip("/") == real_outdir.rstrip("/"):
        raise ParameterError(f"the output directory is the input directory {directory}: every output would "
                             "replace its input; choose another output directory")
    inside = real_outdir.rstrip("/") + "/"
    nested = inside.startswith(real_directory.rstrip("/") + "/")
    if storage.is_url(directory):
        found = storage.find_files(directory, audio.audio_extensions())
        if not found:
            raise ParameterError(f"{directory}: no audio files in it")
    else:
        found = audio.corpus_files(directory)
    return [path for path in found if not _basename(path).startswith(TEMP_PREFIX)
            and not (nested and storage.canonical(path).startswith(inside))]


def _basename(path):
    return posixpath.basename(path) if storage.is_url(path) else os.path.basename(path)


def _relative(path, directory):
    """``path``'s path under ``directory`` (both local, or both URLs), with the local separator."""
    if not storage.is_url(path):
        return os.path.relpath(path, directory)
    inner = posixpath.relpath(storage.canonical(path), storage.canonical(directory))
    return os.path.join(*inner.split("/"))


def _item(content, relative, outdir, styles, model, options, *, row_styles=None, row_model=None, row_options=None):
    """The Item for ``content``, its output ``outdir/relative``; a manifest row's own styles, model and
    settings take the place of the batch's."""
    item_options = dict(options, **(row_options or {}))
    own_styles, own_model = row_styles or (), row_model
    if own_styles or own_model:
        styles, model = own_styles, own_model
    if not styles and model is None:
        raise ParameterError(f"{content}: no style files and no --model for it")
    if styles and model is not None:
        raise ParameterError(f"{content}: give style files or a model, not both")
    relative = os.path.normpath(relative)
    if os.path.isabs(relative) or relative.split(os.sep)[0] == os.pardir or storage.is_url(relative):
        raise ParameterError(f"{content}: output {relative!r} is outside the output directory")
    output = storage.join(outdir, relative)
    return Item(content=storage.absolute(content), output=output, key=relative, styles=tuple(styles), model=model,
                options=item_options)


def _manifest_items(path, outdir, styles, model, options):
    """The items of the manifest CSV ``path``."""
    base = storage.dirname(storage.absolute(path))
    try:
        rows = list(csv.reader(io.StringIO(_manifest_text(path), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ParameterError(f"{path}: not a readable CSV manifest ({exc})") from None
    if not rows:
        raise ParameterError(f"{path}: empty manifest (needs a header row with a 'content' column)")
    columns = [_column_name(name) for name in rows[0]]
    setting_columns = settings_by_column()
    unknown = [name for name, column in zip(rows[0], columns) if column not in FILE_COLUMNS + tuple(setting_columns)]
    if unknown:
        raise ParameterError(f"{path}: unknown column {unknown[0]!r}; columns are {', '.join(FILE_COLUMNS)} and "
                             f"run's settings ({', '.join(sorted(set(setting_columns)))})")
    if "content" not in columns:
        raise ParameterError(f"{path}: no 'content' column in the header row")
    if len(set(columns)) != len(columns):
        raise ParameterError(f"{path}: a column is named twice in the header row")

    def resolve(name):
        name = name.strip()
        if storage.is_url(name):
            return name
        name = os.path.expanduser(name)
        return name if os.path.isabs(name) else storage.join(base, os.path.normpath(name))

    items = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            raise ParameterError(f"{path}, line {line}: {len(row)} cells for {len(columns)} columns")
        cells = {column: cell.strip() for column, cell in zip(columns, row) if cell.strip()}
        where = f"{path}, line {line}"
        if "content" not in cells:
            raise ParameterError(f"{where}: no content file")
        content = resolve(cells["content"])
        row_options = {}
        for column, text in cells.items():
            if column in setting_columns:
                name, kind = setting_columns[column]
                row_options[name] = _parse(kind, text, f"{where}: {column}")
        if "style_weights" in cells:
            row_options["style_weights"] = [_parse(_FLOAT, w, f"{where}: style_weights")
                                            for w in cells["style_weights"].split(";")]
        row_styles = [resolve(s) for s in cells.get("style", "").split(";") if s.strip()]
        row_model = resolve(cells["model"]) if "model" in cells else None
        if "output" in cells:
            relative = cells["output"]
        else:
            relative = _manifest_relative(content, base)
        try:
            items.append(_item(content, relative, outdir, styles, model, options, row_styles=row_styles,
                               row_model=row_model, row_options=row_options))
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}") from None
    return items


def _manifest_text(path):
    """The text of the manifest at ``path`` (local or a URL)."""
    if storage.is_url(path):
        try:
            return storage.read_text(path)
        except AudioError as exc:  # storage's reading errors, as a manifest's
            raise ParameterError(str(exc)) from None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        raise ParameterError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"{path}: not a readable CSV manifest ({exc})") from None


def _manifest_relative(content, base):
    """A manifest row's output path when it names none: the content's path under the manifest's
    directory, or its name where it lies elsewhere."""
    if storage.is_url(content) != storage.is_url(base):
        return _basename(content)
    inside = _relative(content, base)
    return _basename(content) if inside.startswith(os.pardir) else inside


def settings_by_column():
    """A manifest's setting columns for the methods registered now: column -> (setting name, type).

    Columns may be spelled as run's options (``filters``, ``tol``, ``hop``) or as the API's
    parameters (``n_filters``, ``tolerance``, ``hop_length``), with dashes or underscores
    (:attr:`nstaudio.settings.Setting.columns`).
    """
    columns = {"method": ("method", _TEXT)}
    columns.update((column, (setting.name, setting.kind)) for column, setting in manifest_columns().items())
    return columns


def _column_name(name):
    return name.strip().lower().replace("-", "_")


def _parse(kind, text, where):
    if kind is bool:
        if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise ParameterError(f"{where}: expected true or false, got {text!r}")
        return text.lower() in ("true", "yes", "1")
    try:
        return kind(text)
    except ValueError:
        expected = {_FLOAT: "a number", _INT: "an integer"}.get(kind, "text")
        raise ParameterError(f"{where}: expected {expected}, got {text!r}") from None


def _check_outputs(items):
    """Two items writing one output, or an output that is one of the batch's inputs: refused."""
    seen = {}
    for item in items:
        previous = seen.setdefault(storage.canonical(item.output), item)
        if previous is not item:
            raise ParameterError(f"{previous.content} and {item.content} would both be written to {item.output}; "
                                 "give them other names (a manifest's output column)")
    # By real path (or URL) and by inode (hard links), as nstaudio.audio.same_file, in one pass over each.
    paths, inodes = set(), set()
    for item in items:
        for path in (item.content, *item.styles, *([item.model] if item.model else [])):
            paths.add(storage.canonical(path))
            inode = _inode(path)
            if inode is not None:
                inodes.add(inode)
    for item in items:
        if storage.canonical(item.output) in paths or _inode(item.output) in inodes - {None}:
            raise ParameterError(f"output {item.output!r} is one of the inputs; choose another output directory")


def _inode(path):
    if storage.is_url(path):
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino
