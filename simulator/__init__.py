"""A local stand-in for web.whatsapp.com, for tests and the first-run demo.

Standalone on purpose: it imports nothing from FlowHQ and production code never imports it. The
bot drives its page exactly as it would drive WhatsApp Web; see simulator/README.md for the page
contract and the control API. Run it with `python -m simulator`.
"""
