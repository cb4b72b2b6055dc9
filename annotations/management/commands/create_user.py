"""`python manage.py create_user NAME --role annotator|researcher|admin [--password P]`"""

import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotations.models import User


def _one_line(error: ValidationError) -> str:
    return " ".join(error.messages)


class Command(BaseCommand):
    help = (
        "Create a user with a role (annotator, researcher or admin). Admins also get Django admin access. "
        "The username is checked as Django's forms check it, the password by AUTH_PASSWORD_VALIDATORS. "
        "Without --password a random one is generated; the last line is 'username password'."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help="annotator, researcher or admin")
        parser.add_argument("--password", help="password (default: a generated one, printed)")

    def handle(self, *args, username: str, role: str, password: str | None, **options):
        if role not in User.UserRole.values:
            raise CommandError(f"--role: must be one of {', '.join(User.UserRole.values)} (got {role!r})")
        username = User.normalize_username(username.strip())
        if not username:
            raise CommandError("username must not be empty")
        if User.objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} already exists")
        user = User(username=username, role=role)
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as error:
            messages = error.message_dict.get("username") or error.messages
            raise CommandError(f"username: {' '.join(messages)}") from None
        password = password if password is not None else secrets.token_urlsafe(12)
        try:
            validate_password(password, user=user)
        except ValidationError as error:
            raise CommandError(f"--password: {_one_line(error)}") from None
        user.set_password(password)
        user.save()  # is_staff / is_superuser follow the role (User.save)
        self.stderr.write(f"created {role} {user.username!r} (id {user.pk})")
        self.stdout.write(f"{user.username} {password}")
