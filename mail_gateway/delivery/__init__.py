"""Mail delivery (ARCHITECTURE, step 4): outbox rows rendered and sent through an SMTP relay,
or written to a maildir (the default, for a machine without a relay).

* ``message.build_message`` — one notification as an e-mail with every header of CONTRACT §4;
* ``relay.relay_from_url`` — ``SmtpRelay`` or ``MaildirRelay`` from ``VERWIJSINDEX_RELAY_URL``;
* ``worker.MailDelivery`` / ``worker.run_mail_delivery`` — the outbox worker ``serve`` runs.
"""
