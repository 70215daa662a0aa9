"""The dashboard's HTML, one module per page: ``render(ctx, view) -> Rendered``.

Templates only lay out what a view in :mod:`diquis.dashboard.views` decided; shared
pieces (tables of jobs and servers, bulk buttons, search) live in :mod:`.parts`.
"""
