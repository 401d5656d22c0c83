"""Second factors in the browser: enrolment, the challenge after the password, step-up."""
