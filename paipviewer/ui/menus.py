"""Actions, menus and the toolbar of the main window, bound from the one shortcut table."""
from __future__ import annotations

import qtawesome as qta
from PySide6.QtGui import QAction, QKeySequence

from .shortcuts import SHORTCUTS

ICONS = {"open_files": "mdi6.file-image-outline", "open_folder": "mdi6.folder-open-outline",
         "next_image": "mdi6.chevron-right", "previous_image": "mdi6.chevron-left",
         "fit": "mdi6.fit-to-screen-outline", "zoom_100": "mdi6.magnify-scan", "cancel": "mdi6.stop-circle-outline",
         "run_again": "mdi6.play-circle-outline", "problems": "mdi6.alert-circle-outline",
         "shortcuts": "mdi6.keyboard-outline"}
VIEW_MENU = ("next_image", "previous_image", "fit", "zoom_100", "toggle_errors", "toggle_prediction", "toggle_truth",
             "toggle_probability", "toggle_disagree", "toggle_objects", "toggle_outline")
RUN_MENU = ("cancel", "run_again")
TOOLBAR = ("open_files", "open_folder", "previous_image", "next_image", "fit", "zoom_100", "cancel", "run_again")


def build_menus(window) -> dict[str, QAction]:
    """Create the window's actions, menus and toolbar; returns the actions by shortcut name."""
    layers = window.layers_panel
    handlers = {
        "open_files": window.open_files_dialog, "open_folder": window.open_folder_dialog,
        "next_image": lambda: window.step(1), "previous_image": lambda: window.step(-1),
        **{f"toggle_{name}": (lambda *_, n=name: layers.toggle(n))
           for name in ("errors", "prediction", "truth", "probability", "disagree", "objects", "outline")},
        "fit": window.fit, "zoom_100": window.zoom_100, "cancel": window.cancel, "run_again": window.run_again,
        "problems": lambda: (window.docks["problems"].show(), window.docks["problems"].raise_()),
        "shortcuts": window.show_shortcuts,
    }
    actions: dict[str, QAction] = {}
    for s in SHORTCUTS:
        action = QAction(s.text, window)
        action.setShortcut(QKeySequence(s.key))
        if s.action in ICONS:
            action.setIcon(qta.icon(ICONS[s.action]))
        action.triggered.connect(handlers[s.action])
        window.addAction(action)
        actions[s.action] = action

    pick_truth = QAction(qta.icon("mdi6.shape-outline"), "Choose ground truth…", window)
    pick_truth.triggered.connect(window.choose_truth_dialog)
    pixel_size = QAction(qta.icon("mdi6.ruler"), "Pixel size…", window)
    pixel_size.setToolTip("Say how many microns a pixel of these images is, where the files do not say")
    pixel_size.triggered.connect(window.state_pixel_size)
    actions["pixel_size"] = pixel_size
    add_model = QAction(qta.icon("mdi6.brain"), "Add model file…", window)
    add_model.triggered.connect(window.add_model_dialog)
    quit_action = QAction("Quit", window)
    quit_action.setShortcut(QKeySequence.Quit)
    quit_action.triggered.connect(window.close)

    export = QAction(qta.icon("mdi6.content-save-all-outline"), "Export results…", window)
    export.setToolTip("Write scores.csv, nucleus labels, overlays and GeoJSON of every scored image, as "
                      "'paipviewer score' does")
    export.triggered.connect(window.export_results_dialog)
    score_all = QAction(qta.icon("mdi6.playlist-play"), "Score all", window)
    score_all.setToolTip("Score every open image with both models in the background (Stop stops it)")
    score_all.triggered.connect(window.score_all)
    score_folder = QAction(qta.icon("mdi6.folder-play-outline"), "Score folder…", window)
    score_folder.setToolTip("Open a folder of images and score all of them")
    score_folder.triggered.connect(window.score_folder_dialog)
    views = QAction(qta.icon("mdi6.rotate-3d-variant"), "Average 8 views", window, checkable=True)
    views.setToolTip("Test-time augmentation: predict each tile turned and mirrored eight ways and average "
                     "the maps. Steadier masks (ELU-Net 8/5: +0.005 Dice on MoNuSeg validation) for six to "
                     "seven times the time")
    views.setChecked(window.session.views > 1)
    views.toggled.connect(window.set_views)
    actions.update(export_results=export, score_all=score_all, score_folder=score_folder, views=views)

    close_all = QAction("Close all images", window)
    close_all.triggered.connect(window.close_all)
    about = QAction("About PAIP Viewer", window)
    about.triggered.connect(window.show_about)

    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    for a in (actions["open_files"], actions["open_folder"]):
        file_menu.addAction(a)
    recent = file_menu.addMenu("Open recent")
    recent.aboutToShow.connect(lambda: _fill_recent(recent, window))
    for a in (pick_truth, pixel_size, add_model):
        file_menu.addAction(a)
    file_menu.addSeparator()
    file_menu.addAction(export)
    file_menu.addSeparator()
    file_menu.addAction(close_all)
    file_menu.addAction(quit_action)
    view_menu = menu.addMenu("&View")
    for name in VIEW_MENU:
        view_menu.addAction(actions[name])
    view_menu.addSeparator()
    panels = view_menu.addMenu("Panels")
    for dock in window.docks.values():
        panels.addAction(dock.toggleViewAction())
    panels.addAction(actions["problems"])
    run_menu = menu.addMenu("&Run")
    for a in (score_all, score_folder):
        run_menu.addAction(a)
    run_menu.addSeparator()
    run_menu.addAction(views)
    run_menu.addSeparator()
    for name in RUN_MENU:
        run_menu.addAction(actions[name])
    help_menu = menu.addMenu("&Help")
    help_menu.addAction(actions["shortcuts"])
    help_menu.addAction(about)

    tools = window.addToolBar("Main")
    tools.setObjectName("main_toolbar")
    for name in TOOLBAR:
        tools.addAction(actions[name])
    tools.addAction(score_all)
    tools.addAction(add_model)
    tools.addSeparator()
    tools.addWidget(window.model_panel)
    return actions


def _fill_recent(menu, window) -> None:
    menu.clear()
    for path in window.settings.recent:
        menu.addAction(path, lambda p=path: window.open_recent(p))
    if menu.isEmpty():
        menu.addAction("(nothing yet)").setEnabled(False)
