"""Who a person is: document, name, phone and card rules, the password policy and hashing, and
the encryption of personal data at rest."""
