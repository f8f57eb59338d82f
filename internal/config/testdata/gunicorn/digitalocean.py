command = '/home/sammy/myprojectdir/myprojectenv/bin/gunicorn'
pythonpath = '/home/sammy/myprojectdir/myproject'
bind = '127.0.0.1:8001'
workers = 1
