# The tutorial's UDP time client: send a strftime format, print the date. Adapted: the port
# comes from argv, and the end of stdin ends the loop instead of a traceback.
from socket import *
import sys
ip_port = ('127.0.0.1', int(sys.argv[1]))
bufsize = 1024

tcp_client = socket(AF_INET, SOCK_DGRAM)
tcp_client.settimeout(10)

while True:
    try:
        msg = input('请输入时间格式(例%Y %m %d)>>: ').strip()
    except EOFError:
        break
    tcp_client.sendto(msg.encode('utf-8'), ip_port)

    data = tcp_client.recv(bufsize)
    print('当前日期:', str(data, encoding='utf-8'), flush=True)
