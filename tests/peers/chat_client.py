# The tutorial's interactive TCP chat client; the port comes from argv.
import socket, sys
sk = socket.socket()
sk.connect(('127.0.0.1', int(sys.argv[1])))
while True:
    msg = input('客户端>>>')
    sk.send(msg.encode('utf-8'))
    if msg == 'bye':
        break
    ret = sk.recv(1024)
    ret = ret.decode('utf-8')
    print(ret, flush=True)
    if ret == 'bye':
        break
sk.close()
